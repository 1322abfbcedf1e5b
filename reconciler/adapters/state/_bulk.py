"""Building large listings of live events quickly (the SQL backends)."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from reconciler.core.live import LiveEvent
from reconciler.core.models import EventSpec

BULK_ROWS = 2_000  # listings at least this long run with the cyclic collector paused


@contextmanager
def bulk_gc(rows: int) -> Iterator[None]:
    """Pause the cyclic collector while a large listing is built (the models hold no cycles;
    left on, it rescans the growing heap many times), and freeze the result afterwards."""
    if rows < BULK_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


# The row fields ``events_sharing`` reads besides the spec, in ``LiveEvent``'s order.
SHARING_COLUMNS = ("id", "account", "name", "labels", "api", "created_at", "updated_at",
                   "version", "managed_by", "last_applied_hash")
_SERIALIZE = EventSpec.__pydantic_serializer__.to_json


@cache
def _listing_adapter() -> TypeAdapter[list[LiveEvent]]:
    return TypeAdapter(list[LiveEvent])


def events_sharing(rows: Sequence[Sequence[Any]], specs: Mapping[tuple[str, str], EventSpec],
                   read_texts: Callable[[list[str]], list[LiveEvent]]) -> list[LiveEvent]:
    """The events of ``rows`` (each: the stored spec text, ``SHARING_COLUMNS``, the row's JSON
    text), in order; ``read_texts`` is the backend's ``list_events`` reading of row texts.

    A row whose stored spec is byte for byte what the spec given for its key serializes to is
    validated with that spec object in place of its text (pydantic takes a model instance as
    it is), so the event holds that very object: the text would validate to an equal spec
    (serialization round-trips: tests/contract/test_sharing_specs.py). Every other field is
    validated by pydantic as ``list_events`` does, and each event is fingerprinted by its row
    text. Any other row is read by ``read_texts``; should a shared row fail validation, the
    whole listing is read that way, so it fails exactly as ``list_events`` does."""
    out: list[LiveEvent | None] = [None] * len(rows)
    shared: list[dict[str, Any]] = []
    shared_at: list[int] = []
    rest_at: list[int] = []
    for i, row in enumerate(rows):
        fields = _shared_fields(row, specs.get((row[2], row[3])))
        if fields is None:
            rest_at.append(i)
        else:
            shared.append(fields)
            shared_at.append(i)
    try:
        events = _listing_adapter().validate_python(shared)
    except ValidationError:
        return read_texts([row[-1] for row in rows])
    for i, event in zip(shared_at, events, strict=True):
        event.remember_fingerprint(hashlib.sha256(rows[i][-1].encode()).hexdigest())
        out[i] = event
    for i, event in zip(rest_at, read_texts([rows[i][-1] for i in rest_at]), strict=True):
        out[i] = event
    return [event for event in out if event is not None]


def _shared_fields(row: Sequence[Any], spec: EventSpec | None) -> dict[str, Any] | None:
    """The fields of ``row`` with ``spec`` in place of its stored text, when that text is
    exactly ``spec`` serialized and the labels are plain JSON text; else None."""
    stored, labels = row[0], row[4]
    if (spec is None or type(stored) is not str or type(labels) is not str
            or _SERIALIZE(spec, by_alias=True) != stored.encode()):
        return None
    fields = dict(zip(SHARING_COLUMNS, row[1:-1], strict=True))
    try:
        fields["labels"] = orjson.loads(labels)
    except orjson.JSONDecodeError:  # e.g. JSON5, which SQLite's json() reads: its own reading
        return None
    fields["spec"] = spec
    return fields
