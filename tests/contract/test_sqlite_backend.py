"""What only the SQLite backend has: a file, WAL, schema migrations, refusals of bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from statekit import FakeClock, account_spec, form_event, lifecycle_event

from reconciler.adapters.state import sqlite_schema
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.errors import StateError


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_file_and_directories_are_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "repo" / ".convctl" / "state.db"
    provider = SqliteProvider(path)
    provider.close()
    assert path.is_file()
    assert _raw(path, "PRAGMA user_version") == [(sqlite_schema.SCHEMA_VERSION,)]


def test_wal_mode_is_on(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    provider.close()
    assert _raw(tmp_path / "state.db", "PRAGMA journal_mode") == [("wal",)]


def test_reopening_preserves_everything(tmp_path: Path) -> None:
    clock = FakeClock()
    first = SqliteProvider(tmp_path / "state.db", clock=clock)
    account = first.put_account("acme", account_spec(), {"env": "prod"}, None)
    events = [first.create_event(lifecycle_event("funnel", 7)),
              first.create_event(form_event("demo"))]
    lock = first.acquire_lock("alice", "apply", 600)
    first.record_step("run-1", 0, "create acme/funnel", "done")
    first.close()
    again = SqliteProvider(tmp_path / "state.db", clock=clock)
    assert again.list_accounts() == [account]
    assert again.list_events() == sorted(events, key=lambda e: e.key)
    assert again.current_lock() == lock
    assert [s["status"] for s in again.journal("run-1")] == ["done"]
    again.close()


def test_stage_count_column_is_kept_for_quota(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    provider.put_account("acme", account_spec(), {}, None)
    event = provider.create_event(lifecycle_event("funnel", 7))
    provider.update_event(event.id, lifecycle_event("funnel", 4), 1)
    provider.close()
    assert _raw(tmp_path / "state.db", "SELECT stage_count FROM events") == [(4,)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteProvider(path).close()
    newer = sqlite_schema.SCHEMA_VERSION + 1
    _raw(path, f"PRAGMA user_version = {newer}")
    with pytest.raises(StateError) as refused:
        SqliteProvider(path)
    assert str(refused.value) == (
        f"state file {path} has schema version {newer}, this convctl knows up to "
        f"{sqlite_schema.SCHEMA_VERSION}; upgrade convctl")


def test_corrupt_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"definitely not a database\n" * 200)
    with pytest.raises(StateError) as refused:
        SqliteProvider(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"state file {path} is corrupt or not a SQLite database")


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _raw(path, "CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StateError, match="not a convctl state \\(it has tables invoices\\)"):
        SqliteProvider(path)


def test_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot open state file"):
        SqliteProvider(tmp_path)


def test_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(StateError, match="cannot create the directory of state file"):
        SqliteProvider(tmp_path / "blocker" / "state.db")


def test_use_after_close_is_a_state_error(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    provider.close()
    with pytest.raises(StateError):
        provider.list_events()


def test_a_new_migration_upgrades_an_old_file(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    old = SqliteProvider(path)
    old.put_account("acme", account_spec(), {}, None)
    old.close()
    step = ("ALTER TABLE accounts ADD COLUMN note TEXT",)
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", (*sqlite_schema.MIGRATIONS, step))
    monkeypatch.setattr(sqlite_schema, "SCHEMA_VERSION", sqlite_schema.SCHEMA_VERSION + 1)
    upgraded = SqliteProvider(path)
    assert [a.name for a in upgraded.list_accounts()] == ["acme"]
    upgraded.close()
    assert _raw(path, "PRAGMA user_version") == [(sqlite_schema.SCHEMA_VERSION,)]
    assert "note" in {row[1] for row in _raw(path, "PRAGMA table_info(accounts)")}


def test_a_writer_that_never_lets_go_is_reported_as_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    SqliteProvider(path).close()
    monkeypatch.setattr(sqlite_schema, "BUSY_TIMEOUT_SECONDS", 0.1)
    provider = SqliteProvider(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateError, match="is busy: another writer held it"):
            provider.put_account("acme", account_spec(), {}, None)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert provider.list_accounts() == []
    provider.close()


_ROW_EDITS = {  # every column a LiveEvent is read from, edited directly in the file
    "name": "name = 'other'",
    "spec": "spec = json_set(spec, '$.enabled', json('false'))",
    "labels": "labels = '{\"team\": \"x\"}'",
    "api": "api = 'legacy'",
    "created_at": "created_at = '2001-01-01T00:00:00+00:00'",
    "updated_at": "updated_at = '2001-01-01T00:00:00+00:00'",
    "version": "version = version + 1",
    "managed_by": "managed_by = NULL",
    "last_applied_hash": "last_applied_hash = 'x'",
}


@pytest.mark.parametrize("column", sorted(_ROW_EDITS))
def test_fingerprint_changes_with_every_stored_field(tmp_path: Path, column: str) -> None:
    """Saved plans compare fingerprints: an edit of any field, even straight in the file,
    must show, both on a listing and on a single read."""
    path = tmp_path / "state.db"
    provider = SqliteProvider(path)
    provider.put_account("acme", account_spec(), {}, None)
    event = provider.create_event(form_event("demo"))
    before = provider.list_events()[0].fingerprint()
    assert provider.get_event(event.id).fingerprint() == before
    assert SqliteProvider(path).list_events()[0].fingerprint() == before  # stable on re-read
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE events SET {_ROW_EDITS[column]}")
    conn.commit()
    conn.close()
    after = provider.list_events()[0]
    assert after.fingerprint() != before
    assert provider.get_event(event.id).fingerprint() == after.fingerprint()
    provider.close()


def test_a_copy_of_a_listed_event_fingerprints_its_own_fields(tmp_path: Path) -> None:
    provider = SqliteProvider(tmp_path / "state.db")
    provider.put_account("acme", account_spec(), {}, None)
    provider.create_event(form_event("demo"))
    listed = provider.list_events()[0]
    provider.close()
    assert listed.model_copy().fingerprint() == listed.model_copy().fingerprint()
    changed = listed.model_copy(update={"version": listed.version + 1})
    assert changed.fingerprint() != listed.fingerprint()
    assert changed.fingerprint() != listed.model_copy().fingerprint()
    assert listed.model_dump() == listed.model_copy().model_dump()  # the cache is no field


def test_an_unreadable_stored_event_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    provider = SqliteProvider(path)
    provider.put_account("acme", account_spec(), {}, None)
    provider.create_event(form_event("demo"))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE events SET spec = '{\"nope\": 1}'")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="cannot read"):
        provider.list_events()
    provider.close()
