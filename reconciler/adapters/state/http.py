"""The live state behind a ``convctl serve`` control plane: a ``Provider`` over httpx.

One request per provider call; listing an account's events is one request (``plan`` over HTTP
makes one request per account, never one per event). Reads (GET) and DELETE are retried with
exponential backoff on connection errors, timeouts and 5xx; POST, PUT and PATCH are never
retried (a lost answer must not become a double write); a retried DELETE that finds nothing
(404) succeeded on an earlier attempt whose answer was lost. Answers map back to the error tree:

401 -> ``StateError`` (token refused), 403 -> ``StateError`` naming the missing scope,
404 -> ``NotFoundError``, 409 -> ``ConflictError`` (``QuotaExceededError`` for R9),
412 -> ``StaleVersionError``, 423 -> ``LockedError`` (holder's details), 422 with a rule code
(``E304``...) -> ``RuleViolationError`` (same code and R-rule), other 400/413/422/428 ->
``UsageError``, 5xx and unreachable -> ``StateError``. The token is sent only in the
``Authorization`` header and never appears in an error message.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from pydantic import TypeAdapter

from reconciler import __version__
from reconciler.adapters.state import _rules as rules
from reconciler.core.live import EventWrite, LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec
from reconciler.core.provider import LockInfo
from reconciler.errors import (
    ConflictError,
    ConvctlError,
    LockedError,
    NotFoundError,
    QuotaExceededError,
    RuleViolationError,
    StaleVersionError,
    StateError,
    UsageError,
)

_EVENTS = TypeAdapter(list[LiveEvent])
_ACCOUNTS = TypeAdapter(list[LiveAccount])
_LOCKS = TypeAdapter(list[LockInfo])
_IDEMPOTENT = frozenset({"GET", "DELETE"})
_JSON = {"Content-Type": "application/json"}
_RULE_CODE = re.compile(r"E[0-9]{3}")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _error_body(response: httpx.Response) -> tuple[str, str, str | None]:
    """``(code, message, rule)`` of an error envelope (``rule`` only for rule violations)."""
    try:
        error = response.json()["error"]
        rule = error.get("rule")
        return str(error["code"]), str(error["message"]), None if rule is None else str(rule)
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.text[:200].strip() or response.reason_phrase, None


class HttpProvider:
    """A ``Provider`` talking to ``base_url`` with a bearer ``token``.

    ``transport`` replaces httpx's (``httpx.MockTransport`` in tests); ``sleep`` is the backoff
    wait (a no-op in tests).
    """

    def __init__(self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, retries: int = 3, backoff: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self._retries, self._backoff, self._sleep = max(1, retries), backoff, sleep
        self._client = httpx.Client(
            base_url=self.base_url, transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"convctl/{__version__}",
                     "Accept": "application/json"})

    # -- reads ------------------------------------------------------------------------------

    def list_accounts(self) -> list[LiveAccount]:
        return _ACCOUNTS.validate_json(self._call("GET", "/v1/accounts").content)

    def list_events(self, account: str | None = None) -> list[LiveEvent]:
        params = {"account": account} if account is not None else None
        return _EVENTS.validate_json(self._call("GET", "/v1/events", params=params).content)

    def get_event(self, event_id: str) -> LiveEvent:
        return LiveEvent.model_validate_json(
            self._call("GET", f"/v1/events/{_seg(event_id)}").content)

    # -- writes -----------------------------------------------------------------------------

    def put_account(self, name: str, spec: AccountSpec, labels: dict[str, str],
                    expected_version: int | None) -> LiveAccount:
        # Checked here too: a name such as "../x" cannot travel as one path segment.
        rules.check_account_rules(name, spec, labels)
        body = {"spec": spec.model_dump(mode="json", by_alias=True), "labels": labels}
        response = self._call("PUT", f"/v1/accounts/{_seg(name)}", body=body,
                              version=expected_version)
        return LiveAccount.model_validate_json(response.content)

    def create_event(self, event: EventWrite) -> LiveEvent:
        body = event.model_dump(mode="json", by_alias=True, exclude={"account"})
        response = self._call("POST", f"/v1/accounts/{_seg(event.account)}/events", body=body)
        return LiveEvent.model_validate_json(response.content)

    def update_event(self, event_id: str, event: EventWrite, expected_version: int) -> LiveEvent:
        response = self._call("PATCH", f"/v1/events/{_seg(event_id)}",
                              body=event.model_dump(mode="json", by_alias=True),
                              version=expected_version)
        return LiveEvent.model_validate_json(response.content)

    def delete_event(self, event_id: str, expected_version: int | None = None) -> None:
        self._call("DELETE", f"/v1/events/{_seg(event_id)}", version=expected_version)

    # -- lock -------------------------------------------------------------------------------

    def acquire_lock(self, holder: str, operation: str, ttl_seconds: float, *,
                     pid: int | None = None, host: str | None = None) -> LockInfo:
        body = {"holder": holder, "operation": operation, "ttl_seconds": ttl_seconds,
                "pid": os.getpid() if pid is None else pid, "host": host or socket.gethostname()}
        return LockInfo.model_validate_json(self._call("POST", "/v1/locks", body=body).content)

    def renew_lock(self, lock_id: str, ttl_seconds: float) -> LockInfo:
        response = self._call("POST", f"/v1/locks/{_seg(lock_id)}/renew",
                              body={"ttl_seconds": ttl_seconds})
        return LockInfo.model_validate_json(response.content)

    def release_lock(self, lock_id: str) -> None:
        self._call("DELETE", f"/v1/locks/{_seg(lock_id)}")

    def current_lock(self) -> LockInfo | None:
        locks = _LOCKS.validate_json(self._call("GET", "/v1/locks").content)
        return locks[0] if locks else None

    # -- journal ----------------------------------------------------------------------------

    def record_step(self, run_id: str, index: int, description: str, status: str,
                    detail: str = "") -> None:
        self._call("POST", "/v1/journal", body={
            "run_id": run_id, "index": index, "description": description, "status": status,
            "detail": detail})

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        rows = orjson.loads(self._call("GET", f"/v1/journal/{_seg(run_id)}").content)
        return [{"run_id": r["run_id"], "index": r["index"], "description": r["description"],
                 "status": r["status"], "detail": r["detail"],
                 "at": datetime.fromisoformat(r["at"])} for r in rows]

    def close(self) -> None:
        self._client.close()

    # -- transport --------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, body: Any = None,
              params: dict[str, str] | None = None, version: int | None = None
              ) -> httpx.Response:
        headers = dict(_JSON) if body is not None else {}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        content = orjson.dumps(body) if body is not None else None
        attempts = self._retries if method in _IDEMPOTENT else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._client.request(method, path, content=content, params=params,
                                                headers=headers)
            except httpx.HTTPError as exc:
                if attempt < attempts:
                    self._sleep(self._backoff * 2 ** (attempt - 1))
                    continue
                raise self._unreachable(exc) from exc
            if response.status_code >= 500 and attempt < attempts:
                self._sleep(self._backoff * 2 ** (attempt - 1))
                continue
            if method == "DELETE" and attempt > 1 and response.status_code == 404:
                return response  # an earlier attempt deleted it; only its answer was lost
            if response.is_error:
                raise self._refusal(response)
            if response.content and "json" not in response.headers.get("content-type", ""):
                raise self._foreign(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, exc: httpx.HTTPError) -> StateError:
        if isinstance(exc, httpx.TimeoutException):
            return StateError(f"the control plane at {self.base_url} did not answer in time "
                              f"({type(exc).__name__})")
        return StateError(f"cannot reach the control plane at {self.base_url}: "
                          f"{exc or type(exc).__name__}")

    def _foreign(self, response: httpx.Response) -> StateError:
        """One line for an answer that is not ours (an HTML 404 page, a proxy's 502...)."""
        url = response.request.url.copy_with(query=None)
        return StateError(f"{url} answered {response.status_code} "
                          f"{response.reason_phrase}: it does not look like a convctl control "
                          "plane; check the state URL")

    def _refusal(self, response: httpx.Response) -> ConvctlError:
        status = response.status_code
        code, message, rule = _error_body(response)
        if not code:
            return self._foreign(response)
        if status == 401:
            return StateError(f"the control plane refused the token (401): {message}")
        if status == 403:
            return StateError(f"the control plane refused the request (403): {message}")
        kinds: dict[int, type[ConvctlError]] = {
            404: NotFoundError, 409: ConflictError, 412: StaleVersionError, 423: LockedError}
        if status == 422 and _RULE_CODE.fullmatch(code):
            return RuleViolationError(code, rule, message)
        if status == 409 and code == "quota_exceeded":
            return QuotaExceededError(message)
        if status in kinds:
            return kinds[status](message)
        if status in (400, 413, 422, 428):
            return UsageError(f"the control plane rejected the request ({status}): {message}")
        return StateError(f"the control plane at {self.base_url} failed ({status}): {message}")
