"""Live-state backends behind the ``Provider`` protocol (``reconciler.core.provider``).

``open_provider(url)`` picks one from ``--state URL`` / ``CONVCTL_STATE`` (product.md §2):

- ``sqlite:///PATH`` (default ``sqlite:///.convctl/state.db``): relative PATH after three
  slashes, absolute after four (``sqlite:////var/lib/convctl/state.db``); the file is created on
  first use, and so is a missing ``.convctl/`` folder, but no other missing folder (a typo);
- ``memory://`` a fresh in-memory state; ``memory://NAME`` the in-memory state of that name,
  shared by every ``open_provider`` call of this process (tests driving several commands);
- ``http(s)://HOST:PORT`` the ``convctl serve`` control plane, with the bearer token from
  ``$CONVCTL_TOKEN`` (``read`` scope for plan, ``write`` for apply);
- ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`` (or ``postgres://``) a shared
  PostgreSQL database, opened by libpq, so ``PGPASSWORD`` and ``~/.pgpass`` work as usual. A
  password is never shown: messages name the URL through ``redact_url``.

Backend modules are imported on demand, so ``sqlite3`` (or ``psycopg``) is only loaded when it
is used.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.adapters.state._rules import Clock
    from reconciler.adapters.state.memory import MemoryProvider
    from reconciler.adapters.state.tokens import TokenStore
    from reconciler.core.provider import Provider

ENV_VAR: Final = "CONVCTL_STATE"
TOKEN_ENV_VAR: Final = "CONVCTL_TOKEN"
DEFAULT_URL: Final = "sqlite:///.convctl/state.db"
STATE_DIR: Final = ".convctl"  # created on first use; no other missing folder is
SCHEMES: Final = ("sqlite:///PATH, postgresql://USER@HOST[:PORT]/DB, memory://[NAME], "
                  "http(s)://HOST:PORT")
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")
_PASSWORD_MASK: Final = "***"


class _NamedMemoryStores:
    """The process-local ``memory://NAME`` stores (one registry, created on first use)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._stores: dict[str, MemoryProvider] = {}

    def get(self, name: str, clock: Clock | None) -> MemoryProvider:
        from reconciler.adapters.state.memory import MemoryProvider

        with self._mutex:
            if name not in self._stores:
                self._stores[name] = MemoryProvider(clock=clock)
            return self._stores[name]


_MEMORY = _NamedMemoryStores()


def resolve_url(url: str | None) -> str:
    """The state URL to use: the given one, else ``$CONVCTL_STATE``, else the default."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def open_provider(url: str | None = None, *, clock: Clock | None = None) -> Provider:
    """Open the live-state backend named by ``url`` (see the module docstring)."""
    url = resolve_url(url)
    if url.startswith("sqlite:"):
        from reconciler.adapters.state.sqlite import SqliteProvider

        path = _sqlite_path(url)
        _check_state_dir(path, url)
        return SqliteProvider(path, clock=clock)
    if url.startswith("memory://"):
        return _memory(url.removeprefix("memory://"), clock)
    if url.startswith(("http://", "https://")):
        return _http(url)
    if is_postgres(url):
        from reconciler.adapters.state.postgres import PostgresProvider

        return PostgresProvider(url, clock=clock)
    raise UsageError(f"unsupported state URL {redact_url(url)!r}; use one of {SCHEMES}")


def open_token_store(url: str | None = None) -> TokenStore:
    """The control plane's token store in the state at ``url`` (SQLite file or PostgreSQL)."""
    url = resolve_url(url)
    if is_postgres(url):
        from reconciler.adapters.state.postgres_tokens import PostgresTokenStore

        return PostgresTokenStore(url)
    from reconciler.adapters.state.tokens import SqliteTokenStore

    return SqliteTokenStore(sqlite_path(url))


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """``url`` with any password (``user:PASSWORD@`` or ``?password=``) replaced by ``***``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{_PASSWORD_MASK}@{hostport}"
    query = parts.query
    if "password" in query.lower():
        query = urlencode([(k, _PASSWORD_MASK if k.lower() == "password" else v)
                           for k, v in parse_qsl(query, keep_blank_values=True)], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide (and urlunsplit would drop sqlite:///'s empty host)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _http(url: str) -> Provider:
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if not token:
        raise UsageError(f"set {TOKEN_ENV_VAR} to a token with read scope (plan) or write scope "
                         f"(apply) to use the control plane at {url}")
    from reconciler.adapters.state.http import HttpProvider

    return HttpProvider(url, token)


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` state URL (commands that need the file itself)."""
    if not url.startswith("sqlite:"):
        raise UsageError(f"this command needs a sqlite:///PATH state, not {redact_url(url)!r}")
    return _sqlite_path(url)


def _sqlite_path(url: str) -> Path:
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    if not path:
        raise UsageError(f"state URL {url!r} has no file path; use sqlite:///relative/path or "
                         "sqlite:////absolute/path")
    return Path(path).expanduser()


def _check_state_dir(path: Path, url: str) -> None:
    """Only the conventional ``.convctl/`` folder is created on first use: any other missing
    folder is most likely a mistyped ``--state``, and guessing would scatter state files."""
    folder = path.parent
    if folder.is_dir() or (folder.name == STATE_DIR and folder.parent.is_dir()):
        return
    raise UsageError(f"state directory {str(folder)!r} does not exist (state URL {url}); "
                     f"create it, or point --state / {ENV_VAR} at an existing folder")


def _memory(name: str, clock: Clock | None) -> Provider:
    from reconciler.adapters.state.memory import MemoryProvider

    return _MEMORY.get(name, clock) if name else MemoryProvider(clock=clock)


__all__ = ["DEFAULT_URL", "ENV_VAR", "TOKEN_ENV_VAR", "is_postgres", "open_provider",
           "open_token_store", "redact_url", "resolve_url", "sqlite_path"]
