"""Control-plane bearer tokens in the PostgreSQL state (``tokens`` table), as ``tokens.py`` keeps
them in SQLite: only SHA-256 hashes are stored; the token is shown once, by ``create``.

Two servers creating a token of the same name at once: the partial unique index on active names
refuses the second, with the same message as the check before it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from psycopg import errors as pg_errors

from reconciler.adapters.state.postgres_schema import Conn, migrated
from reconciler.adapters.state.tokens import TokenInfo, check_scopes, hash_token, new_token
from reconciler.errors import ConflictError, NotFoundError, UsageError

_COLUMNS = "id, name, scopes, created_at, revoked_at"


def _info(row: tuple[Any, ...]) -> TokenInfo:
    token_id, name, scopes, created_at, revoked_at = row[:5]
    return TokenInfo(id=token_id, name=name, scopes=tuple(scopes.split()),
                     created_at=created_at, revoked_at=revoked_at)


def _name_taken(name: str) -> UsageError:
    return UsageError(f"an active token named '{name}' already exists; revoke it first or "
                      "choose another --name")


class PostgresTokenStore:
    """Tokens in the state database at ``url``; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.db = migrated(url, pool_size=2)

    def create(self, scopes: list[str] | tuple[str, ...], name: str | None = None
               ) -> tuple[TokenInfo, str]:
        """A new token: its record and the secret (returned once, never stored)."""
        token_id = secrets.token_hex(4)
        checked, name = check_scopes(scopes), name or f"token-{token_id}"
        secret = new_token()

        def work(conn: Conn) -> tuple[Any, ...] | None:
            if conn.execute("SELECT 1 FROM tokens WHERE name = %s AND revoked_at IS NULL",
                            (name,)).fetchone():
                raise _name_taken(name)
            return conn.execute(
                f"INSERT INTO tokens (id, name, hash, scopes, created_at) VALUES "
                f"(%s, %s, %s, %s, now()) RETURNING {_COLUMNS}",
                (token_id, name, hash_token(secret), " ".join(checked))).fetchone()

        try:
            row = self.db.run(work)
        except ConflictError as exc:  # a racing create of the same name won
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise _name_taken(name) from exc
            raise
        assert row is not None
        return _info(row), secret

    def list(self) -> list[TokenInfo]:
        rows = self.db.run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at, name").fetchall())
        return [_info(row) for row in rows]

    def revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke the active token with this name or id."""
        row = self.db.run(lambda conn: conn.execute(
            f"UPDATE tokens SET revoked_at = now() WHERE id = (SELECT id FROM tokens WHERE "
            "revoked_at IS NULL AND (name = %s OR id = %s) LIMIT 1 FOR UPDATE) "
            f"RETURNING {_COLUMNS}", (name_or_id, name_or_id)).fetchone())
        if row is None:
            raise NotFoundError(f"no active token named or with id '{name_or_id}'")
        return _info(row)

    def verify(self, token: str) -> TokenInfo | None:
        """The active token's record, or None; the comparison is constant-time."""
        digest = hash_token(token)
        row = self.db.run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS}, hash FROM tokens WHERE hash = %s AND revoked_at IS NULL",
            (digest,)).fetchone())
        if row is None or not hmac.compare_digest(row[5], digest):
            return None
        return _info(row)

    def close(self) -> None:
        self.db.close()
