"""Dashboard sessions: a signed cookie that names a token, never the token itself.

Logging in checks the token once (``TokenVerifier.verify``) and sets ``convctl_session``
(HttpOnly, SameSite=Strict, Path=/ui, Secure over HTTPS) to ``payload.signature``: the payload
holds the token's *id* (not its secret, not its hash), a random session nonce and an expiry;
the signature is HMAC-SHA256 under the server's session key. So neither the page nor the
cookie ever holds anything that works as a bearer token against the API, and a leaked state
file's hashes do not open the dashboard.

Every request re-reads the token by id from the token store: a revoked token ends its sessions
at once, and its scopes are the store's, not the cookie's. Logging out forgets the nonce in this
process and clears the cookie; with several replicas, give them one key
(``CONVCTL_UI_SESSION_KEY``) so a session works on each, and revoke the token for a hard stop
everywhere. Without a key, each process draws a random one (sessions end at a restart).

CSRF: a synchronizer token per session, HMAC(key, "csrf:" + nonce), put in every form and
compared in constant time on every POST; POSTs with a foreign ``Origin`` are refused as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from reconciler.adapters.state.tokens import TokenInfo

COOKIE = "convctl_session"
SESSION_SECONDS = 8 * 3600


class TokenDirectory(Protocol):
    def verify(self, token: str) -> TokenInfo | None: ...
    def list(self) -> list[TokenInfo]: ...


@dataclass(frozen=True)
class Session:
    token: TokenInfo
    nonce: str
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and checks session cookies under one key; thread-safe."""

    def __init__(self, key: bytes | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key or secrets.token_bytes(32)
        self._clock = clock
        self._ended: dict[str, float] = {}  # nonce -> expiry, for logged-out sessions
        self._mutex = threading.Lock()

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def csrf_for(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}")

    def issue(self, token: TokenInfo) -> str:
        """A cookie value for a session of ``token`` (already verified)."""
        payload = {"t": token.id, "n": secrets.token_hex(16),
                   "e": int(self._clock()) + SESSION_SECONDS}
        body = _b64(orjson.dumps(payload))
        return f"{body}.{self._sign('session:' + body)}"

    def check(self, cookie: str | None, tokens: TokenDirectory) -> Session | None:
        """The live session the cookie names, or None (bad signature, expired, logged out,
        token revoked)."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign("session:" + body)):
            return None
        try:
            payload = orjson.loads(_unb64(body))
            token_id, nonce, expiry = str(payload["t"]), str(payload["n"]), int(payload["e"])
        except (ValueError, KeyError, TypeError):
            return None
        with self._mutex:
            if expiry < self._clock() or nonce in self._ended:
                return None
        token = next((t for t in tokens.list() if t.id == token_id and t.active), None)
        return Session(token, nonce, self.csrf_for(nonce)) if token else None

    def end(self, session: Session) -> None:
        """Forget the session here (logout)."""
        now = self._clock()
        with self._mutex:
            self._ended = {n: e for n, e in self._ended.items() if e > now}
            self._ended[session.nonce] = now + SESSION_SECONDS

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf, presented or "")

    def flash(self, message: str) -> str:
        """A signed one-time message for the next page (the result of an action)."""
        body = _b64(message.encode())
        return f"{body}.{self._sign('flash:' + body)}"

    def read_flash(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign("flash:" + body)):
            return None
        try:
            return _unb64(body).decode()
        except ValueError:
            return None
