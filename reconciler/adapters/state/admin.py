"""Looking after a state store itself: its schema version, what it holds, migrating it.

``status(url)`` reads without changing anything (a SQLite file is opened read-only, and neither
backend is migrated); ``migrate(url)`` brings the schema up to this convctl's version and says
from which version to which. Both work on ``sqlite:///`` and ``postgresql://`` states; the
PostgreSQL side is in ``postgres_admin``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters.state import _rules as rules
from reconciler.adapters.state import is_postgres, redact_url, resolve_url, sqlite_path
from reconciler.core.provider import LockInfo
from reconciler.errors import StateError, UsageError

COUNTED = ("accounts", "events", "tokens", "journal")
"""The tables ``status`` counts (tokens: the active ones; journal: the recorded steps)."""


@dataclass(frozen=True)
class StateStatus:
    backend: str
    url: str  # password redacted
    schema_version: int
    latest_version: int
    counts: dict[str, int] = field(default_factory=dict)
    lock: LockInfo | None = None

    @property
    def up_to_date(self) -> bool:
        return self.schema_version == self.latest_version


def status(url: str | None) -> StateStatus:
    url = resolve_url(url)
    if is_postgres(url):
        from reconciler.adapters.state import postgres_admin

        return postgres_admin.status(url)
    return _sqlite_status(url)


def migrate(url: str | None) -> tuple[int, int]:
    """(schema version before, after) of the state at ``url``, migrated."""
    url = resolve_url(url)
    if is_postgres(url):
        from reconciler.adapters.state import postgres_admin

        return postgres_admin.migrate(url)
    from reconciler.adapters.state import open_provider, sqlite_schema

    path = state_file(url)
    before = _sqlite_version(path) if path.exists() else 0
    open_provider(url).close()  # opening a SQLite state migrates it
    return before, sqlite_schema.SCHEMA_VERSION


def state_file(url: str) -> Path:
    """The file of a ``sqlite:///`` state; any other URL is refused (admin works on files and
    PostgreSQL only)."""
    if not url.startswith("sqlite:"):
        raise UsageError(f"this command works on sqlite:///PATH and postgresql:// states, not "
                         f"{redact_url(url)!r}")
    return sqlite_path(url)


def _read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StateError(f"no state file at {path} (nothing applied yet, or a mistyped --state)")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state file {path}: {exc}") from exc


def _sqlite_version(path: Path) -> int:
    conn = _read_only(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StateError(f"state file {path} is corrupt or not a SQLite database ({exc})") from exc
    finally:
        conn.close()


def _sqlite_status(url: str) -> StateStatus:
    from reconciler.adapters.state import sqlite_schema

    path = state_file(url)
    version = _sqlite_version(path)
    conn = _read_only(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        counts = {name: int(conn.execute(f"SELECT count(*) FROM {name}"
                                         + (" WHERE revoked_at IS NULL" if name == "tokens"
                                            else "")).fetchone()[0])
                  for name in COUNTED if name in tables}
        lock = None
        if "locks" in tables:
            row = conn.execute("SELECT id, holder, pid, host, operation, created_at, expires_at "
                               "FROM locks WHERE slot = 1").fetchone()
            if row is not None:
                keys = ("id", "holder", "pid", "host", "operation", "created_at", "expires_at")
                lock = rules.live_lock(LockInfo.model_validate(dict(zip(keys, row, strict=True))),
                                       rules.utc_now())
    except sqlite3.Error as exc:
        raise StateError(f"state file {path}: {exc}") from exc
    finally:
        conn.close()
    return StateStatus("sqlite", url, version, sqlite_schema.SCHEMA_VERSION, counts, lock)
