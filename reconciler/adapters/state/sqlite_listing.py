"""How the SQLite state lists events: each row as one JSON text SQLite assembles, validated in
bulk and fingerprinted by that text (``events_from_json``); and a plan's listing
(``provider.SharesSpecs``, ``events_sharing``): ``list_events`` in which an unchanged event holds
the manifest's own spec object.

Most events of a large plan are unchanged: a row whose stored spec is byte for byte what the
desired spec of its key serializes to is validated with that spec object in place of its text
(pydantic takes a model instance as it is), so the planner compares the two by identity; the
text would validate to an equal spec (serialization round-trips:
tests/contract/test_sharing_specs.py). Its other fields are validated by pydantic as
``list_events`` validates them, and its fingerprint is the SHA-256 of the JSON text SQLite's
``json_object`` writes for it (``_ROW_JSON``), rebuilt here from the fields: every text field
plain (nothing ``json_object`` escapes), spec and labels stored minified (``json`` leaves them
as they are). One row of each listing is checked against SQLite's own text. Any other row is
read by id as ``list_events`` reads it, in the same read transaction; any doubt (a row that
fails, a check that differs) and the listing is ``list_events()``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from reconciler.adapters.state._bulk import BULK_ROWS, bulk_gc
from reconciler.adapters.state.sqlite_schema import EVENT_COLUMNS
from reconciler.core.live import LiveEvent
from reconciler.core.models import EventSpec
from reconciler.errors import StateError

# The row fields a plan's listing reads besides the spec, in ``LiveEvent``'s (and the
# table's) order; the spec comes before them.
SHARING_COLUMNS = ("id", "account", "name", "labels", "api", "created_at", "updated_at",
                   "version", "managed_by", "last_applied_hash")
_SERIALIZE = EventSpec.__pydantic_serializer__.to_json  # warnings=False: a validated spec has
# none to give, and looking for them is a sixth of the call


# One JSON object per row, assembled by SQLite (spec and labels are stored as JSON already):
# the rows of a listing are validated in one call, and each row's text is its fingerprint.
_ROW_JSON = "json_object({})".format(", ".join(
    f"'{c}', json({c})" if c in ("spec", "labels") else f"'{c}', {c}"
    for c in EVENT_COLUMNS if c != "stage_count"))
EVENT_JSON = f"SELECT {_ROW_JSON} FROM events"
# A plan's listing: the stored spec and the other fields; then the JSON of the rows it reads
# as ``list_events`` does, by id.
EVENTS_SHARING = f"SELECT spec, {', '.join(SHARING_COLUMNS)} FROM events ORDER BY account, name"
_EVENTS_BY_ID = f"SELECT id, {_ROW_JSON} FROM events WHERE id IN "


@cache
def _event_list_adapter() -> TypeAdapter[list[LiveEvent]]:
    return TypeAdapter(list[LiveEvent])


def events_from_json(texts: list[str], path: Path) -> list[LiveEvent]:
    """Validate the JSON texts of event rows in one call; fingerprint each by its text."""
    adapter, events = _event_list_adapter(), []
    try:
        for start in range(0, len(texts), BULK_ROWS):  # bounded text: memory stays linear
            events.extend(adapter.validate_json(f"[{','.join(texts[start:start + BULK_ROWS])}]"))
    except ValidationError as exc:
        raise StateError(f"state file {path} holds an event this version cannot read "
                         f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']})"
                         ) from exc
    for event, text in zip(events, texts, strict=True):
        event.remember_fingerprint(fingerprint(text))
    return events


def fingerprint(text: str) -> str:
    """An event's fingerprint: the SHA-256 of its row's JSON text (every stored field)."""
    return hashlib.sha256(text.encode()).hexdigest()


def events_by_id(cursor: sqlite3.Cursor, path: Path, ids: list[str]) -> list[LiveEvent]:
    """The events ``ids`` (each stored), in that order, read as ``list_events`` reads them."""
    texts: dict[str, str] = {}
    for at in range(0, len(ids), 500):  # within SQLite's limit of parameters
        part = ids[at:at + 500]
        texts.update(cursor.execute(
            f"{_EVENTS_BY_ID}({', '.join('?' * len(part))})", part).fetchall())
    return events_from_json([texts[i] for i in ids], path)


def events_sharing(conn: sqlite3.Connection, path: Path,
                   specs: Mapping[tuple[str, str], EventSpec],
                   listing: Callable[[], list[LiveEvent]]) -> list[LiveEvent]:
    """Every event of the state at ``path`` (read on ``conn``, inside one read transaction),
    sharing ``specs`` where they are stored as is; ``listing`` is ``list_events``, what any
    doubt falls back to. See the module docstring."""
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples
    rows = cursor.execute(EVENTS_SHARING).fetchall()
    with bulk_gc(len(rows)):
        return _sharing(rows, specs, cursor, path, listing)


def _sharing(rows: Sequence[Sequence[Any]], specs: Mapping[tuple[str, str], EventSpec],
             cursor: sqlite3.Cursor, path: Path,
             listing: Callable[[], list[LiveEvent]]) -> list[LiveEvent]:
    """The events of ``rows`` (each: the stored spec, then ``SHARING_COLUMNS``), in order."""
    out: list[LiveEvent | None] = [None] * len(rows)
    shared: list[dict[str, Any]] = []
    shared_at: list[tuple[int, str]] = []  # (row, its JSON text)
    rest_at: list[int] = []
    for i, row in enumerate(rows):
        fields = _shared_fields(row, specs.get((row[2], row[3])))
        text = row_json(row) if fields is not None else None
        if fields is None or text is None:
            rest_at.append(i)
        else:
            shared.append(fields)
            shared_at.append((i, text))
    try:
        events = _event_list_adapter().validate_python(shared)
        ids = [rows[i][1] for i in rest_at] + [rows[i][1] for i, _ in shared_at[:1]]
        rest = events_by_id(cursor, path, ids)
    except (ValidationError, StateError):  # a row this version cannot read: in its words
        return listing()
    if shared_at and rest.pop().fingerprint() != fingerprint(shared_at[0][1]):
        return listing()  # SQLite writes its JSON otherwise (another version): not rebuilt
    for (i, text), event in zip(shared_at, events, strict=True):
        event.remember_source(text)  # fingerprint(text), when asked for
        out[i] = event
    for i, event in zip(rest_at, rest, strict=True):
        out[i] = event
    return [event for event in out if event is not None]


def _shared_fields(row: Sequence[Any], spec: EventSpec | None) -> dict[str, Any] | None:
    """The fields of ``row`` with ``spec`` in place of its stored text, when that text is
    exactly ``spec`` serialized and the labels are plain JSON text; else None."""
    stored, id_, account, name, labels, api, created, updated, version, manager, applied = row
    if (spec is None or type(stored) is not str or type(labels) is not str
            or _SERIALIZE(spec, by_alias=True, warnings=False) != stored.encode()):
        return None
    try:
        parsed = orjson.loads(labels)
    except orjson.JSONDecodeError:  # e.g. JSON5, which SQLite's json() reads: its own reading
        return None
    return {"id": id_, "account": account, "name": name, "spec": spec, "labels": parsed,
            "api": api, "created_at": created, "updated_at": updated, "version": version,
            "managed_by": manager, "last_applied_hash": applied}


def row_json(row: Sequence[Any]) -> str | None:
    """The text SQLite's ``json_object`` writes for ``row`` (spec, then ``SHARING_COLUMNS``),
    or None unless it is these fields as they are: texts nothing in which is escaped, an
    integer version, spec and labels minified JSON (``json()`` leaves those unchanged)."""
    spec, id_, account, name, labels, api, created, updated, version, manager, applied = row
    if (type(version) is not int or not (manager is None or type(manager) is str)
            or not (applied is None or type(applied) is str)):
        return None
    try:
        plain = "".join((id_, account, name, api, created, updated, manager or "",
                         applied or ""))
    except TypeError:  # a field that is not text
        return None
    if not plain.isprintable() or '"' in plain or "\\" in plain:
        return None
    if labels != "{}" and orjson.dumps(orjson.loads(labels)).decode() != labels:
        return None
    return (f'{{"id":"{id_}","account":"{account}","name":"{name}","spec":{spec},'
            f'"labels":{labels},"api":"{api}","created_at":"{created}",'
            f'"updated_at":"{updated}","version":{version},"managed_by":{_text(manager)},'
            f'"last_applied_hash":{_text(applied)}}}')


def _text(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'
