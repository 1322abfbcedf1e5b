"""A plan's listing (``SharesSpecs``, SQLite): ``list_events`` where an unchanged event holds the
manifest's own spec object instead of an equal one validated again from the file.

Same events, fields, order, fingerprints and refusals as ``list_events``, whatever the specs
given and whatever was edited straight in the file; the specs shared are exactly those stored
as they serialize, and serialization round-trips (so sharing one never changes what is read).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from statekit import account_spec, form_event, lifecycle_event

from reconciler.adapters.state import sqlite_listing
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.core.live import EventWrite, LiveEvent
from reconciler.core.models import EventSpec
from reconciler.core.provider import SharesSpecs
from reconciler.errors import StateError


def _copy(spec: EventSpec) -> EventSpec:
    """An equal spec that is not the stored one (as a manifest's would be)."""
    return EventSpec.model_validate(spec.model_dump(mode="json", by_alias=True))


def _view(event: LiveEvent) -> tuple[object, ...]:
    return (repr(event), event.fingerprint(), event.drifted, event.stage_count)


def _fill(provider: SqliteProvider) -> dict[str, LiveEvent]:
    provider.put_account("acme", account_spec("enterprise"), {}, None)
    provider.put_account("beta", account_spec("professional"), {}, None)
    writes = [form_event("a"), form_event("twin"),  # twin: the same spec under another name
              lifecycle_event("stages", 3),
              form_event("other", protect=True),  # a spec nobody passes
              EventWrite(account="acme", name="hand-made", spec=form_event("x").spec,
                         managed_by=None),
              EventWrite(account="acme", name="old-api", spec=lifecycle_event("o", 2).spec,
                         api="legacy", labels={"team": "ops", "tier": "1"}),
              form_event("b", account="beta")]
    return {w.name: provider.create_event(w) for w in writes}


def test_the_listing_is_list_events_sharing_the_given_specs(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    assert isinstance(provider, SharesSpecs)
    made = _fill(provider)
    given = {made[name].key: _copy(made[name].spec)
             for name in ("a", "stages", "hand-made", "old-api", "b")}
    given[made["other"].key] = _copy(made["a"].spec)  # not the spec "other" has
    listed = provider.list_events()
    shared = provider.list_events_sharing(given)
    assert shared == listed
    assert [_view(e) for e in shared] == [_view(e) for e in listed]
    same = {e.key for e in shared if given.get(e.key) is e.spec}
    # "twin" stores the spec given for "a", but under its own key nothing was given.
    assert same == set(given) - {made["other"].key}
    provider.close()


def test_drift_versions_and_fingerprints_read_the_same(tmp_path: Path) -> None:
    """An event changed outside git since its last apply reads as drifted, at its new version,
    with a new fingerprint, whether or not its new spec is one the caller holds."""
    provider = SqliteProvider(tmp_path / "state.db")
    made = _fill(provider)
    before = {e.name: e.fingerprint() for e in provider.list_events_sharing({})}
    changed = form_event("a", enabled=False)
    provider.update_event(made["a"].id, EventWrite(
        account="acme", name="a", spec=changed.spec, last_applied_hash="h-applied"), 1)
    for specs in ({}, {made["a"].key: _copy(changed.spec)}):
        [a] = [e for e in provider.list_events_sharing(specs) if e.name == "a"]
        assert (a.spec is specs.get(a.key)) == bool(specs)
        assert (a.drifted, a.version, a.spec.enabled) == (True, 2, False)
        assert a.fingerprint() != before["a"]
        assert _view(a) == _view(provider.get_event(made["a"].id))
    provider.close()


def test_the_listing_inside_an_open_transaction_reads_in_it(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    made = _fill(provider)
    given = {e.key: _copy(e.spec) for e in made.values()}
    with provider._write():  # e.g. a caller's write transaction on the same connection
        inside = provider.list_events_sharing(given)
    assert [_view(e) for e in inside] == [_view(e) for e in provider.list_events()]
    provider.close()


def test_the_listing_of_an_empty_state(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    assert provider.list_events_sharing({("acme", "a"): form_event("a").spec}) == []
    provider.close()


def _outcome(read: Callable[[], list[LiveEvent]]) -> object:
    try:
        return [_view(e) for e in read()]
    except StateError as exc:
        return str(exc)


@pytest.mark.parametrize("edit", [
    "api = 'bogus'", "version = 'two'", "version = '3'", "labels = '[1]'",
    "labels = '{\"n\": 1}'", "labels = '{\"team\": \"x\"}'", "labels = 5", "id = 42",
    "managed_by = 7", "last_applied_hash = 3.5", "created_at = 'yesterday'",
    "created_at = 1700000000", "updated_at = '2001-01-01T00:00:00Z'", "name = 'other'",
    "spec = json_set(spec, '$.enabled', json('false'))", "spec = json(spec)"])
def test_an_edited_row_reads_as_list_events_reads_it(tmp_path: Path, edit: str) -> None:
    """Edits straight in the file read (or are refused, in the same words) exactly as
    ``list_events`` reads them, the spec given for the row's key being its own."""
    path = tmp_path / "state.db"
    provider = SqliteProvider(path)
    provider.put_account("acme", account_spec(), {}, None)
    event = provider.create_event(form_event("demo"))
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE events SET {edit}")
    conn.commit()
    conn.close()
    listed = _outcome(provider.list_events)
    specs = {event.key: _copy(event.spec), ("acme", "other"): _copy(event.spec)}
    assert _outcome(lambda: provider.list_events_sharing(specs)) == listed
    if edit.startswith(("api", "version = 'two'", "labels = '[", "labels = '{\"n")):
        assert isinstance(listed, str) and "cannot read" in listed
    provider.close()


_FIELDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)


@given(st.lists(st.tuples(_FIELDS, _FIELDS, st.integers(-2**63, 2**63 - 1) | _FIELDS,
                          st.none() | _FIELDS | st.integers(0, 9),
                          st.sampled_from(['{}', '{"a":"b"}', '{"a": "b"}', '{"é":"\\n"}'])),
                min_size=1, max_size=4))
@example([('a"b', "x\\y", 1, None, "{}"), ("t\tab", "enhanced", True, 7, "{}"),
          ("é", "enhanced", -3, "convctl", '{"a":"b"}'), ("n", "e", "1", "", "{}")])
def test_the_row_json_rebuilt_is_sqlites_own_or_declined(
        edits: list[tuple[str, str, object, object, str]]) -> None:
    """``sqlite_listing.row_json`` writes exactly what ``json_object`` writes for a row, or
    declines (escaped texts, a non-integer version, labels not minified...)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE events (id, account, name, spec, labels, api, created_at, "
                 "updated_at, version, managed_by, last_applied_hash)")
    for i, (name, api, version, manager, labels) in enumerate(edits):
        conn.execute("INSERT INTO events VALUES (?, 'acme', ?, ?, ?, ?, 'c', 'u', ?, ?, ?)",
                     (f"ev_{i}", name, '{"a":[1,2.5,"é\\n"],"b":null}', labels, api, version,
                      manager, None if i % 2 else "h"))
    rows = conn.execute(sqlite_listing.EVENTS_SHARING).fetchall()
    texts = [t for (t,) in conn.execute(
        f"SELECT {sqlite_listing._ROW_JSON} FROM events ORDER BY account, name")]
    for row, text in zip(rows, texts, strict=True):
        rebuilt = sqlite_listing.row_json(row)
        assert rebuilt is None or rebuilt == text, (row, text)
        if row[4] == "{}" and type(row[8]) is int and all(map(_simple, (row[3], row[5], row[9]))):
            assert rebuilt is not None  # the usual row is rebuilt


def _simple(value: object) -> bool:
    return value is None or value == "" or (
        isinstance(value, str) and value.isascii() and value.isalnum())


def test_a_listing_whose_rebuilt_json_differs_from_sqlites_is_list_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As if another SQLite wrote its JSON otherwise: the one row checked differs, and the
    listing is list_events' own, fingerprints included."""
    provider = SqliteProvider(tmp_path / "state.db")
    made = _fill(provider)
    monkeypatch.setattr(sqlite_listing, "row_json",
                        lambda row: '{"id":"' + str(row[1]) + '"}')
    given = {e.key: _copy(e.spec) for e in made.values()}
    shared = provider.list_events_sharing(given)
    assert [_view(e) for e in shared] == [_view(e) for e in provider.list_events()]
    assert not any(given.get(e.key) is e.spec for e in shared)
    provider.close()


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """Event specs of every shape a manifest can hold, with arbitrary texts and numbers."""
    if draw(st.booleans()):
        trigger: dict[str, Any] = {"lifecycleStageChange": {
            "stages": draw(st.lists(_TEXT, max_size=3)),
            "contacts": draw(st.sampled_from(["all", "adInteractions"]))}}
    else:
        form: dict[str, Any] = {"formId": draw(_TEXT), "predictiveLeadScore": draw(st.booleans()),
                                "consent": {"property": draw(_TEXT), "value": draw(_TEXT)}}
        if draw(st.booleans()):
            form["facebookEvent"] = draw(_TEXT)
        if draw(st.booleans()):
            amount = draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers(
                -2**53, 2**53))
            form["value"] = {"amount": amount, "currency": draw(_TEXT)}
        trigger = {"formSubmission": form}
    data: dict[str, Any] = {
        "account": draw(_TEXT), "enabled": draw(st.booleans()), "protect": draw(st.booleans()),
        "trigger": trigger,
        "dataSharing": {"properties": draw(st.lists(_TEXT | st.builds(
            lambda p, a: {"property": p, "as": a}, _TEXT, _TEXT), max_size=3)),
            "ipAddress": draw(st.booleans())}}
    for key in ("network", "adAccount", "conversionRule", "conversionAction"):
        if draw(st.booleans()):
            data[key] = (draw(st.sampled_from(["meta", "linkedin", "google"]))
                         if key == "network" else draw(_TEXT))
    if draw(st.booleans()):
        data["dataProcessingOptions"] = {"options": draw(st.lists(_TEXT, max_size=2)),
                                         "country": draw(st.none() | st.integers(-5, 5)),
                                         "state": draw(st.none() | st.integers(0, 2000))}
    return data


@given(specs())
def test_a_serialized_spec_reads_back_equal(data: dict[str, Any]) -> None:
    """What sharing rests on: a stored text equal to a spec's serialization validates to a spec
    equal to it, so the listing may hand out that spec instead."""
    spec = EventSpec.model_validate(data)
    text = EventSpec.__pydantic_serializer__.to_json(spec, by_alias=True)
    assert EventSpec.model_validate_json(text) == spec
