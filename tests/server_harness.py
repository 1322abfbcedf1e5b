"""Test-only control plane for the provider contract suite (run as a script).

The same ``create_app`` and uvicorn runner as ``convctl serve``, over SQLite, with two test
seams that production lacks: ``X-Test-State: NAME`` picks a fresh state file per test and
``X-Test-Now: ISO`` sets the store's clock for the request (the suite's fake clock).
Usage: ``python server_harness.py PORT DIR``; writes an admin token to ``DIR/admin.token``.
"""

from __future__ import annotations

import re
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.adapters.state.tokens import SqliteTokenStore
from reconciler.server.app import create_app
from reconciler.server.run import serve

_NOW: ContextVar[datetime | None] = ContextVar("now", default=None)
_STATE: ContextVar[str] = ContextVar("state", default="default")


def clock() -> datetime:
    return _NOW.get() or datetime.now(UTC)


class Routed:
    """A provider that forwards every call to the state named by the request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mutex = threading.Lock()
        self._states: dict[str, SqliteProvider] = {}

    def __getattr__(self, name: str) -> Any:
        key = _STATE.get()
        with self._mutex:
            if key not in self._states:
                self._states[key] = SqliteProvider(self.root / f"{key}.db", clock=clock)
            return getattr(self._states[key], name)


class TestHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        now = headers.get(b"x-test-now")
        state = headers.get(b"x-test-state", b"default").decode()
        _NOW.set(datetime.fromisoformat(now.decode()) if now else None)
        _STATE.set(state if re.fullmatch(r"[a-z0-9-]{1,64}", state) else "default")
        await self.app(scope, receive, send)


def main() -> None:
    port, root = int(sys.argv[1]), Path(sys.argv[2])
    tokens = SqliteTokenStore(root / "tokens.db")
    _, secret = tokens.create(["admin"], "harness")
    (root / "admin.token").write_text(secret)
    app = create_app(Routed(root), tokens)  # type: ignore[arg-type]
    serve(TestHeaders(app), "127.0.0.1", port, log_level="warning")


if __name__ == "__main__":
    main()
