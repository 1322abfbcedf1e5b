"""Dashboard sessions and the events snapshot, with a real token store and fake clocks.

A session cookie names the token by id under an HMAC: it never holds the token or its hash,
a changed byte or another key voids it, it ends at its expiry, at logout and when the token
is revoked, and its scopes are the store's. The CSRF token is per session.
"""

from __future__ import annotations

import base64
import sys
import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.state.memory import MemoryProvider
from reconciler.adapters.state.tokens import SqliteTokenStore, hash_token
from reconciler.server.ui.sessions import SESSION_SECONDS, Sessions
from reconciler.server.ui.snapshot import Snapshots

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
from statekit import account_spec, form_event


def _store(tmp_path: Path) -> SqliteTokenStore:
    return SqliteTokenStore(tmp_path / "state.db")


def test_cookie_names_the_token_by_id_only(tmp_path: Path) -> None:
    tokens = _store(tmp_path)
    info, secret = tokens.create(["read"], "viewer")
    sessions = Sessions(b"k" * 32)
    cookie = sessions.issue(info)
    decoded = base64.urlsafe_b64decode(cookie.split(".")[0] + "==").decode()
    assert info.id in decoded
    assert secret not in cookie and secret not in decoded
    assert hash_token(secret) not in cookie and hash_token(secret) not in decoded
    session = sessions.check(cookie, tokens)
    assert session is not None and session.token.scopes == ("read",)
    assert Sessions(b"other-key" * 4).check(cookie, tokens) is None  # another key
    tokens.close()


@given(st.integers(min_value=0, max_value=200), st.sampled_from("AbZ09-_."))
def test_any_changed_character_voids_the_cookie(position: int, char: str) -> None:
    from datetime import UTC, datetime

    from reconciler.adapters.state.tokens import TokenInfo

    class One:
        info = TokenInfo("abcd1234", "viewer", ("read",), datetime(2026, 1, 1, tzinfo=UTC))

        def verify(self, token: str) -> TokenInfo | None:
            return None

        def list(self) -> list[TokenInfo]:
            return [self.info]

    sessions = Sessions(b"k" * 32)
    cookie = sessions.issue(One.info)
    i = position % len(cookie)
    forged = cookie[:i] + char + cookie[i + 1:]
    if forged != cookie:
        assert sessions.check(forged, One()) is None


def test_session_ends_at_expiry_logout_and_revocation(tmp_path: Path) -> None:
    tokens = _store(tmp_path)
    info, _ = tokens.create(["write"], "operator")
    now = [1_000_000.0]
    sessions = Sessions(b"k" * 32, clock=lambda: now[0])
    cookie = sessions.issue(info)
    now[0] += SESSION_SECONDS + 1
    assert sessions.check(cookie, tokens) is None  # expired
    now[0] = 1_000_000.0
    session = sessions.check(cookie, tokens)
    assert session is not None
    sessions.end(session)
    assert sessions.check(cookie, tokens) is None  # logged out
    again = sessions.issue(info)
    assert sessions.check(again, tokens) is not None
    tokens.revoke("operator")
    assert sessions.check(again, tokens) is None  # the token was revoked
    tokens.close()


def test_csrf_token_is_per_session_and_compared_exactly(tmp_path: Path) -> None:
    tokens = _store(tmp_path)
    info, _ = tokens.create(["write"], "operator")
    sessions = Sessions(b"k" * 32)
    one = sessions.check(sessions.issue(info), tokens)
    two = sessions.check(sessions.issue(info), tokens)
    assert one is not None and two is not None and one.csrf != two.csrf
    assert sessions.csrf_ok(one, one.csrf)
    assert not sessions.csrf_ok(one, two.csrf)
    assert not sessions.csrf_ok(one, None) and not sessions.csrf_ok(one, "")
    tokens.close()


def test_flash_messages_are_signed() -> None:
    sessions = Sessions(b"k" * 32)
    assert sessions.read_flash(sessions.flash("Lock 1 released.")) == "Lock 1 released."
    forged = base64.urlsafe_b64encode(b"You were hacked").decode().rstrip("=") + ".x"
    assert sessions.read_flash(forged) is None


def test_snapshot_serves_the_old_one_while_reading_the_next() -> None:
    provider = MemoryProvider()
    provider.put_account("acme", account_spec("enterprise"), {}, None)
    first = provider.create_event(form_event("first"))
    now = [0.0]
    snapshots = Snapshots(provider, max_age=5.0, clock=lambda: now[0])
    assert [r["name"] for r in snapshots.get().rows] == ["first"]
    provider.create_event(form_event("second"))
    now[0] = 4.0
    assert len(snapshots.get().rows) == 1  # young enough: no read
    now[0] = 6.0
    assert len(snapshots.get().rows) == 1  # stale: served, and the next one read meanwhile
    for thread in threading.enumerate():
        if thread.name == "ui-snapshot":
            thread.join(5)
    assert len(snapshots.get().rows) == 2
    off = provider.get_event(first.id)
    snapshots.patch(off.model_copy(update={"spec": off.spec.model_copy(
        update={"enabled": False})}))
    assert next(r for r in snapshots.get().rows if r["name"] == "first")["enabled"] is False


class _Gated:
    """A provider whose event listing waits for a gate (a read in progress)."""

    def __init__(self, inner: MemoryProvider) -> None:
        self.inner, self.gate, self.reading = inner, threading.Event(), threading.Event()

    def list_events(self, account: str | None = None) -> list[object]:
        self.reading.set()
        assert self.gate.wait(5)
        return self.inner.list_events(account)  # type: ignore[return-value]

    def list_accounts(self) -> list[object]:
        return self.inner.list_accounts()  # type: ignore[return-value]


def _join_refresh() -> None:
    for thread in threading.enumerate():
        if thread.name == "ui-snapshot":
            thread.join(5)


def test_a_read_older_than_a_write_does_not_undo_it() -> None:
    inner = MemoryProvider()
    inner.put_account("acme", account_spec("enterprise"), {}, None)
    ev = inner.create_event(form_event("one"))
    gated, now = _Gated(inner), [0.0]
    snapshots = Snapshots(gated, max_age=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    gated.gate.set()
    snapshots.get()
    gated.gate.clear()
    gated.reading.clear()
    now[0] = 10.0
    snapshots.get()  # stale: a background read starts, and waits at the gate
    assert gated.reading.wait(5)
    off = ev.model_copy(update={"spec": ev.spec.model_copy(update={"enabled": False})})
    snapshots.patch(off)  # the dashboard's write lands while that read is under way
    gated.gate.set()
    _join_refresh()
    assert snapshots.get().rows[0]["enabled"] is False  # the older read was dropped


def test_the_login_form_warms_the_first_snapshot() -> None:
    inner = MemoryProvider()
    inner.put_account("acme", account_spec("enterprise"), {}, None)
    inner.create_event(form_event("one"))
    gated = _Gated(inner)
    snapshots = Snapshots(gated)  # type: ignore[arg-type]
    snapshots.warm()
    assert gated.reading.wait(5)  # read in the background, before any page asks
    threading.Timer(0.2, gated.gate.set).start()
    assert [r["name"] for r in snapshots.get().rows] == ["one"]  # waited for that read
