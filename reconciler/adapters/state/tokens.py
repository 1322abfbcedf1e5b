"""Control-plane bearer tokens, kept in the state (``tokens`` table; SQLite here, PostgreSQL in
``postgres_tokens``).

A token is ``cvt_`` + 32 URL-safe random characters. Only its SHA-256 hash is stored, next to a
name, its scopes, ``created_at`` and ``revoked_at``; the token itself is shown once, by
``convctl token create``, and never again. ``verify`` hashes the presented token, looks the hash
up and compares it with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from reconciler.adapters.state.sqlite_schema import connect, immediate
from reconciler.errors import NotFoundError, StateError, UsageError

SCOPES: Final = ("read", "write", "ingest", "admin")
PREFIX: Final = "cvt_"
_COLUMNS: Final = "id, name, scopes, created_at, revoked_at"


@dataclass(frozen=True)
class TokenInfo:
    """What the store knows about a token (never the token itself)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(24)  # 24 bytes -> 32 URL-safe characters


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise UsageError(f"unknown or missing scope {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


def _info(row: sqlite3.Row) -> TokenInfo:
    revoked = row["revoked_at"]
    return TokenInfo(id=row["id"], name=row["name"], scopes=tuple(row["scopes"].split()),
                     created_at=datetime.fromisoformat(row["created_at"]),
                     revoked_at=datetime.fromisoformat(revoked) if revoked else None)


class SqliteTokenStore:
    """Tokens in the state file at ``path``; safe to share between threads."""

    def __init__(self, path: str | Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = Path(path)
        self._clock = clock
        self._mutex = threading.Lock()
        self._conn = connect(self.path)
        self._conn.row_factory = sqlite3.Row

    def create(self, scopes: list[str] | tuple[str, ...], name: str | None = None
               ) -> tuple[TokenInfo, str]:
        """A new token: its record and the secret (returned once, never stored)."""
        token_id = secrets.token_hex(4)
        info = TokenInfo(id=token_id, name=name or f"token-{token_id}",
                         scopes=check_scopes(scopes), created_at=self._clock())
        secret = new_token()
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ? AND revoked_at IS NULL",
                            (info.name,)).fetchone():
                raise UsageError(f"an active token named '{info.name}' already exists; "
                                 "revoke it first or choose another --name")
            conn.execute("INSERT INTO tokens (id, name, hash, scopes, created_at) "
                         "VALUES (?, ?, ?, ?, ?)", (info.id, info.name, hash_token(secret),
                                                    " ".join(info.scopes),
                                                    info.created_at.isoformat()))
        return info, secret

    def list(self) -> list[TokenInfo]:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at, name")
            return [_info(row) for row in rows.fetchall()]

    def revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke the active token with this name or id."""
        with self._tx() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM tokens WHERE revoked_at IS NULL AND "
                               "(name = ? OR id = ?)", (name_or_id, name_or_id)).fetchone()
            if row is None:
                raise NotFoundError(f"no active token named or with id '{name_or_id}'")
            now = self._clock()
            conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?",
                         (now.isoformat(), row["id"]))
            return TokenInfo(**{**_info(row).__dict__, "revoked_at": now})

    def verify(self, token: str) -> TokenInfo | None:
        """The active token's record, or None; the comparison is constant-time."""
        digest = hash_token(token)
        with self._mutex:
            try:
                row = self._conn.execute(f"SELECT {_COLUMNS}, hash FROM tokens WHERE hash = ? "
                                         "AND revoked_at IS NULL", (digest,)).fetchone()
            except sqlite3.Error as exc:
                raise StateError(f"token store {self.path}: {exc}") from exc
        if row is None or not hmac.compare_digest(row["hash"], digest):
            return None
        return _info(row)

    def close(self) -> None:
        with self._mutex:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            try:
                with immediate(self._conn) as conn:
                    yield conn
            except sqlite3.Error as exc:
                raise StateError(f"token store {self.path}: {exc}") from exc


class TokenStore(Protocol):
    """Where the control plane's tokens live: the SQLite file or the PostgreSQL database."""

    def create(self, scopes: list[str] | tuple[str, ...], name: str | None = None
               ) -> tuple[TokenInfo, str]: ...

    def list(self) -> list[TokenInfo]: ...

    def revoke(self, name_or_id: str) -> TokenInfo: ...

    def verify(self, token: str) -> TokenInfo | None: ...

    def close(self) -> None: ...
