"""Bearer-token authentication and scopes.

Scopes: ``read`` (GET routes: plan on pull requests), ``write`` (mutations of accounts, events,
locks and the journal: apply; implies ``read``, since apply plans first), ``ingest`` (the agent's
ingest endpoints only), ``admin`` (everything). A missing or unknown token is 401 with
``WWW-Authenticate: Bearer``; a known token without the scope is 403 naming the scope.
Tokens are verified by the store (SHA-256 hash, constant-time comparison) and never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Protocol

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reconciler.adapters.state.tokens import TokenInfo
from reconciler.server.errors import ApiError

GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "ingest": frozenset({"ingest"}),
    "admin": frozenset({"read", "write", "ingest", "admin"}),
}

_bearer = HTTPBearer(auto_error=False, description="A token from `convctl token create`.")


class TokenVerifier(Protocol):
    def verify(self, token: str) -> TokenInfo | None: ...


def allows(token: TokenInfo, scope: str) -> bool:
    return any(scope in GRANTS.get(s, frozenset()) for s in token.scopes)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def require(scope: str) -> Callable[..., TokenInfo]:
    """A dependency: the request's token, which must grant ``scope``."""

    def check(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
              ) -> TokenInfo:
        if credentials is None:
            raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        verifier: TokenVerifier = request.app.state.tokens
        token = verifier.verify(credentials.credentials)
        if token is None:
            raise _unauthorized("unknown or revoked token")
        if not allows(token, scope):
            raise ApiError(403, "forbidden",
                           f"token '{token.name}' (scopes: {', '.join(token.scopes)}) lacks the "
                           f"'{scope}' scope needed for {request.method} {request.url.path}")
        return token

    return check


READ = Depends(require("read"))
WRITE = Depends(require("write"))
INGEST = Depends(require("ingest"))
ADMIN = Depends(require("admin"))
