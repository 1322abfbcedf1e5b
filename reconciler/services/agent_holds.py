"""Holding the agent's inbox processing off while what it needs fails (issue 12).

Processing a chunk reads the live state and fetches contacts. When that fails, trying again at
once only spins (a HubSpot 401 fails the same way every time): ``InboxHold`` keeps the inbox off
for a while instead and records why in the store (``agent_holds``: ``agent status`` and
``/metrics`` show it), logging once per change of state, not once per try.

=====================  =============================================  ========================
reason                 cause                                          next try
=====================  =============================================  ========================
contacts_refused       the contact source refused us (HubSpot 401,    ``RECHECK_SECONDS``
                       403, another 4xx): a permanent error
contacts_unavailable   the contact source is down, rate-limited, ...  backoff, >= Retry-After
state_refused          the live state refused us (a permanent error)  ``RECHECK_SECONDS``
state_unavailable      the live state or the store is busy or down    backoff, >= Retry-After
=====================  =============================================  ========================

Backoff delays grow 1, 2, 4 ... seconds (the agent's policy, no jitter), at most
``RECHECK_SECONDS``. The first chunk processed after a hold ends it (and is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from reconciler.core.backoff import BackoffPolicy
from reconciler.errors import ConvctlError, PermanentError, TransientError
from reconciler.services.ports import AgentStore

T = TypeVar("T")
log = logging.getLogger("reconciler.agent")
INBOX = "inbox"
RECHECK_SECONDS = 60.0
HOLD_REASONS = ("contacts_refused", "contacts_unavailable", "state_refused",
                "state_unavailable")


class ContactSourceFailed(ConvctlError):
    """The contact source failed while a chunk was processed (``cause``: its error)."""

    def __init__(self, cause: ConvctlError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class InboxHold:
    """When the inbox may be processed again, and why not before (one per agent)."""

    def __init__(self, store: AgentStore, policy: BackoffPolicy) -> None:
        self._store, self._policy = store, policy
        self.until = 0.0
        self._failures = 0
        held = _quiet(lambda: store.holds().get(INBOX))  # left by an earlier process?
        self.reason: str | None = held.reason if held else None

    def active(self, now: float) -> bool:
        return now < self.until

    def failed(self, exc: ConvctlError, now: float) -> None:
        """Hold the inbox off after ``exc``; record and log it when the reason is new."""
        reason, delay = self._classify(exc)
        self._failures += 1
        self.until = now + delay
        if reason == self.reason:
            return
        self.reason = reason
        log.warning("inbox processing held off (%s): %s; trying again every %.0f s at most",
                    reason, exc, RECHECK_SECONDS)
        _quiet(lambda: self._store.hold(INBOX, reason, str(exc)))

    def ok(self) -> None:
        """A chunk was processed: end the hold (only a real hold costs a write)."""
        self._failures = 0
        if self.reason is None:
            return
        log.info("inbox processing resumed (it was held off: %s)", self.reason)
        self.reason = None
        _quiet(lambda: self._store.release(INBOX))

    def _classify(self, exc: ConvctlError) -> tuple[str, float]:
        source = "state"
        if isinstance(exc, ContactSourceFailed):
            source, exc = "contacts", exc.cause
        if isinstance(exc, PermanentError) or not isinstance(exc, TransientError):
            return f"{source}_refused", RECHECK_SECONDS
        delay = max(self._policy.ceiling(self._failures), exc.retry_after or 0.0)
        return f"{source}_unavailable", min(delay, RECHECK_SECONDS)


def _quiet(read: Callable[[], T]) -> T | None:
    """``read()``, or None when the store itself fails (the hold is still kept in memory)."""
    try:
        return read()
    except ConvctlError:
        return None


class Outage:
    """A running agent's cycles failing on an unreachable store or state (a database restart):
    logged once when it starts and once when it ends, retried after growing delays (the
    agent's policy, at most ``RECHECK_SECONDS``), never a crash."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self._policy = policy
        self.failures = 0

    def failed(self, exc: TransientError) -> float:
        """Log the first failure of an outage; the delay before the next try."""
        if self.failures == 0:
            log.warning("agent cycle failed, retrying until it works: %s", exc)
        self.failures += 1
        return min(max(self._policy.ceiling(self.failures - 1), exc.retry_after or 0.0),
                   RECHECK_SECONDS)

    def ok(self) -> None:
        if self.failures:
            log.info("agent cycle works again after %d failed tries", self.failures)
        self.failures = 0
