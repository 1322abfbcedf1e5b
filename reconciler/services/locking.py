"""The state lock as an apply holds it: taken (waiting up to a timeout), renewed, lost, explained.

``hold_lock`` takes the lock, retrying with a short backoff until ``LockPolicy.timeout_seconds``
(0: fail at once, like Terraform's ``-lock-timeout``), and renews it in a background thread every
third of its TTL for as long as the apply runs, so an apply longer than the TTL keeps it.
``HeldLock.ensure_held`` runs before every write: when the lock was released (``convctl unlock``)
or, after expiring, taken by someone else, it raises ``LockedError`` and the apply writes nothing
more. A refusal names the holder and `convctl unlock ID`, and says when the holder's process is
gone from this host (the lock is never broken automatically: that is the user's call).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from reconciler.adapters.process import pid_running
from reconciler.core.provider import LockInfo, Provider
from reconciler.errors import ConvctlError, LockedError, NotFoundError

LOCK_TTL_SECONDS = 15 * 60
_FIRST_WAIT, _MAX_WAIT = 0.1, 2.0  # seconds between attempts while waiting for the lock

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LockPolicy:
    """How an apply takes and keeps the lock (``clock`` and ``sleep`` are for tests)."""

    timeout_seconds: float = 0.0
    ttl_seconds: float = LOCK_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    @property
    def renew_every(self) -> float:
        return self.ttl_seconds / 3


def explain_holder(lock: LockInfo, *, host: str | None = None,
                   running: Callable[[int], bool] = pid_running) -> str:
    """``lock.describe()`` plus what the user can do about it."""
    here = host or socket.gethostname()
    if lock.host == here and not running(lock.pid):
        advice = (f"its process {lock.pid} on this host is no longer running; if no apply is "
                  f"running, `convctl unlock {lock.id}`")
    else:
        advice = (f"wait for it (--lock-timeout DURATION), or if that {lock.operation} is dead, "
                  f"`convctl unlock {lock.id}`")
    return f"the state is locked: {lock.describe()}; {advice}"


def acquire(provider: Provider, holder: str, operation: str, policy: LockPolicy,
            progress: Progress) -> LockInfo:
    """Take the lock, retrying until ``policy.timeout_seconds``; else ``LockedError`` naming
    the holder (and whether its process is gone)."""
    deadline = policy.clock() + policy.timeout_seconds
    wait, told = _FIRST_WAIT, False
    while True:
        try:
            return provider.acquire_lock(holder, operation, policy.ttl_seconds)
        except LockedError as exc:
            current = provider.current_lock()
            left = deadline - policy.clock()
            if left <= 0:
                waited = (f"still locked after {policy.timeout_seconds:g}s: "
                          if policy.timeout_seconds > 0 else "")
                why = explain_holder(current) if current else str(exc)
                raise LockedError(waited + why) from exc
            if not told and current is not None:
                progress(f"Waiting up to {policy.timeout_seconds:g}s for the state lock "
                         f"({current.describe()})...")
                told = True
            policy.sleep(min(wait * random.uniform(0.5, 1.5), left))
            wait = min(wait * 2, _MAX_WAIT)


class HeldLock:
    """A lock this process holds; renewed in the background until ``stop``."""

    def __init__(self, provider: Provider, lock: LockInfo, policy: LockPolicy) -> None:
        self.lock, self._provider, self._policy = lock, provider, policy
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="convctl-lock-renewal",
                                        daemon=True)
        self._thread.start()

    def ensure_held(self) -> None:
        """Raise ``LockedError`` unless this lock still holds the state (run before a write)."""
        if self._lost is None:
            current = self._provider.current_lock()
            if current is not None and current.id == self.lock.id:
                return
            try:  # expired but not taken over: renewing keeps it; else it is lost
                self._renew()
            except ConvctlError as exc:
                raise LockedError(f"cannot confirm the state lock {self.lock.id} before the "
                                  f"next write ({exc}); this apply stopped") from exc
        if self._lost is not None:
            raise LockedError(self._lost)

    def stop(self) -> None:
        """Stop renewing and release the lock (unless it was lost: then it is not ours)."""
        self._stop.set()
        self._thread.join()
        if self._lost is None:
            # broken or taken over after the last write: then there is nothing of ours to release
            with suppress(NotFoundError):
                self._provider.release_lock(self.lock.id)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._policy.renew_every) and self._lost is None:
            with suppress(ConvctlError):  # retried at the next tick: the TTL leaves two more
                self._renew()

    def _renew(self) -> None:
        try:
            self.lock = self._provider.renew_lock(self.lock.id, self._policy.ttl_seconds)
        except NotFoundError as exc:
            self._lost = (f"lost the state lock {self.lock.id} ({exc}): it was broken with "
                          "`convctl unlock`, or it expired and was taken; this apply stopped "
                          "before its next write")


@contextmanager
def hold_lock(provider: Provider, holder: str, operation: str, policy: LockPolicy,
              progress: Progress) -> Iterator[HeldLock]:
    """Take the state lock (see ``acquire``), keep it renewed, release it on the way out."""
    held = HeldLock(provider, acquire(provider, holder, operation, policy, progress), policy)
    try:
        yield held
    except BaseException:
        with suppress(ConvctlError):  # the error under way is the one to report
            held.stop()
        raise
    held.stop()
