"""Retry schedule as data, and the classification of Graph API answers (capi-contract.md).

Delays are exponential with *full jitter*: attempt ``n`` (from 0) waits a uniform draw in
``[0, min(cap, base * factor**n)]``, the draw coming from an injected ``rand() -> [0, 1)`` so
tests are deterministic. A server's ``Retry-After`` is a floor: the delay is never shorter than
it (bounded by ``max_retry_after`` so a hostile header cannot park a pixel for days).

``classify_graph_error(status, body)`` -> ``ok | retry | permanent | token``:
- ``token``: codes 190, 102 (stop sending for that pixel and alert);
- ``retry``: codes 1, 2, 4, 17, 32, 341, 368, 613, 80004, ``is_transient: true``, HTTP 5xx,
  408 and 429 without a known code, and a 200 whose body is not the success shape;
- ``permanent``: 100 (2804050: not enough customer information), 10 and 200-299 (permissions),
  any other code with a 4xx status (an unknown code with a 5xx status is retried), other 4xx;
- ``ok``: 200 with ``{"events_received": n, ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import orjson

Verdict = Literal["ok", "retry", "permanent", "token"]
RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, 80004})
TOKEN_CODES = frozenset({190, 102})
PERMISSION_CODES = frozenset({10, *range(200, 300)})


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter; ``max_attempts`` counts every try."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    max_attempts: int = 10
    max_retry_after: float = 3600.0

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number ``attempt`` (0 = after the first failure)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        return min(self.cap, self.base * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rand: Callable[[], float],
              retry_after: float | None = None) -> float:
        """Seconds to wait before the next try; ``retry_after`` (seconds) is honoured."""
        jittered = rand() * self.ceiling(attempt)
        if retry_after is not None and retry_after > 0:
            return max(jittered, min(retry_after, self.max_retry_after))
        return jittered

    def gives_up(self, attempts_made: int) -> bool:
        return attempts_made >= self.max_attempts

    def schedule(self, rand: Callable[[], float]) -> list[float]:
        """The whole schedule: one delay per retry (``max_attempts - 1`` of them)."""
        return [self.delay(n, rand) for n in range(self.max_attempts - 1)]


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (delta seconds or an HTTP date) as seconds from ``now``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ref = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return max(0.0, (when - ref).total_seconds())


@dataclass(frozen=True, slots=True)
class GraphError:
    """The fields of a Graph error envelope the agent records (message for the dead letter)."""

    code: int | None
    subcode: int | None
    message: str
    is_transient: bool
    fbtrace_id: str | None


def _as_json(body: Any) -> Any:
    if isinstance(body, bytes | bytearray | str):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    return body


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)  # ASCII only: "²".isdigit() is True, int("²") raises
    return None


def parse_graph_error(body: Any) -> GraphError | None:
    """The error envelope of a Graph answer, or None when there is none."""
    data = _as_json(body)
    err = data.get("error") if isinstance(data, Mapping) else None
    if not isinstance(err, Mapping):
        return None
    message = err.get("error_user_msg") or err.get("message") or ""
    return GraphError(code=_int(err.get("code")), subcode=_int(err.get("error_subcode")),
                      message=str(message), is_transient=err.get("is_transient") is True,
                      fbtrace_id=err.get("fbtrace_id") if isinstance(
                          err.get("fbtrace_id"), str) else None)


def is_success_body(body: Any) -> bool:
    data = _as_json(body)
    return isinstance(data, Mapping) and _int(data.get("events_received")) is not None \
        and "error" not in data


def _classify_code(error: GraphError, status: int) -> Verdict:
    if error.code in TOKEN_CODES:
        return "token"
    if error.is_transient or error.code in RETRY_CODES:
        return "retry"
    if error.code == 100 or error.code in PERMISSION_CODES:
        return "permanent"
    if status >= 500 or (error.code is None and status in (408, 429)):
        return "retry"
    return "permanent"


def classify_graph_error(status: int, body: Any) -> Verdict:
    """Classify a Graph API answer by its body ``code`` first, then its HTTP status."""
    error = parse_graph_error(body)
    if error is not None:
        return _classify_code(error, status)
    if status == 200:
        return "ok" if is_success_body(body) else "retry"
    if status >= 500 or status in (408, 429):
        return "retry"
    return "permanent"
