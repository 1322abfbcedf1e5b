"""Rules every state backend applies the same way, so their refusals read the same.

Pure decisions over values a backend has read inside its write transaction: the manifest rules
(``core.write_rules``: the codes and R-rules validate reports), quota (R7, R9),
optimistic-concurrency versions, name clashes, lock ownership. Also the id/time helpers and the
``Clock`` type the backends take.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core import write_rules
from reconciler.core.live import EventWrite, LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec
from reconciler.core.provider import LockInfo
from reconciler.core.quota import limit_for
from reconciler.diagnostics import Diagnostic
from reconciler.errors import (
    ConflictError,
    LockedError,
    NotFoundError,
    QuotaExceededError,
    RuleViolationError,
    StaleVersionError,
    UsageError,
)

PARK_INFIX = ".replaced-"
"""``services.apply`` parks an event it replaces create-first as ``NAME.replaced-ID`` (a name no
manifest can use) with its old spec: the one write that is not a manifest's."""

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    """Server-assigned event id: ``ev_`` + 16 hex digits."""
    return "ev_" + secrets.token_hex(8)


def new_lock_id() -> str:
    return secrets.token_hex(6)


def unknown_account(name: str) -> NotFoundError:
    return NotFoundError(f"account '{name}' does not exist in the live state")


def unknown_event(event_id: str) -> NotFoundError:
    return NotFoundError(f"event {event_id} does not exist in the live state")


def check_quota(account: LiveAccount, used_before: int, used_after: int) -> None:
    """Refuse a write that raises the account's slot use above its tier limit (R7, R9).

    A write that does not raise the use (a shrink, a form event) always passes, so an account
    already above its limit can still be brought back under it.
    """
    limit = limit_for(account.spec.tier)
    if used_after > limit and used_after > used_before:
        raise QuotaExceededError(
            f"quota exceeded for account '{account.name}': {account.spec.tier} allows {limit} "
            f"lifecycle-stage events, this write would make {used_after} (R9)")


def check_tier_change(name: str, old: AccountSpec, new: AccountSpec, used: int) -> None:
    """Refuse lowering an account's tier below the slots its events already use (R9)."""
    new_limit = limit_for(new.tier)
    if used > new_limit and new_limit < limit_for(old.tier):
        raise QuotaExceededError(
            f"cannot change account '{name}' to tier {new.tier}: its events use {used} "
            f"lifecycle-stage slots and {new.tier} allows {new_limit} (R9)")


def check_account_version(name: str, expected: int | None, actual: int | None) -> None:
    """``expected=None`` creates (the account must not exist); an int updates that version."""
    if expected is None and actual is not None:
        raise ConflictError(f"account '{name}' already exists (version {actual}); "
                            "give its version to update it")
    if expected is not None and actual is None:
        raise unknown_account(name)
    if expected is not None and expected != actual:
        raise StaleVersionError(f"account '{name}' was changed by someone else: expected "
                                f"version {expected}, live version is {actual}")


def check_event_version(event: LiveEvent, expected: int | None) -> None:
    if expected is not None and expected != event.version:
        raise StaleVersionError(
            f"event {event.account}/{event.name} ({event.id}) was changed by someone else: "
            f"expected version {expected}, live version is {event.version}")


def check_write(event: EventWrite) -> None:
    if event.spec.account != event.account:
        raise ConflictError(f"event {event.account}/{event.name}: spec.account is "
                            f"'{event.spec.account}', not '{event.account}'")


def _violation(what: str | None, findings: list[Diagnostic]) -> RuleViolationError:
    """The first finding (prefixed with what was written, when it does not name it itself)."""
    first = findings[0]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    prefix = f"{what}: " if what else ""
    return RuleViolationError(first.code, first.rule, f"{prefix}{first.message}{more}")


def check_account_rules(name: str, spec: AccountSpec, labels: dict[str, str]) -> None:
    """Refuse an account write that ``validate`` would refuse as a manifest (same code)."""
    findings = write_rules.account_findings(name, spec, labels)
    if findings:
        raise _violation(f"account '{name}'", findings)


def check_account_networks(name: str, spec: AccountSpec,
                           uses: Callable[[], Iterable[write_rules.NetworkUse]]) -> None:
    """Refuse an account update that removes the block of a network its live events send to
    (E128, R1: what validate says of those events). ``uses`` reads the events' networks inside
    the write transaction; it is called only when ``spec`` lacks a block."""
    if write_rules.unblocked_networks(spec):
        findings = write_rules.stranded(name, spec, uses())
        if findings:  # E128's words name the account already
            raise _violation(None, findings)


def _exempt(old: LiveEvent, event: EventWrite) -> bool:
    """Updates that cannot make ``old`` break a rule it does not already break: parking it
    unchanged under ``NAME.replaced-ID``, or only switching it off (R19: sending stops at once,
    even for an event stored before the rules, or whose account has changed since)."""
    if event.labels != old.labels:
        return False
    parked = event.name == f"{old.name}{PARK_INFIX}{old.id}" and event.spec == old.spec
    off = event.name == old.name and not event.spec.enabled and (
        event.spec == old.spec.model_copy(update={"enabled": False}))
    return parked or off


def check_event_rules(account: LiveAccount, event: EventWrite, old: LiveEvent | None = None
                      ) -> None:
    """Refuse an event write that ``validate`` would refuse next to its account's manifest
    (same code and R-rule); ``_exempt`` updates of ``old`` pass."""
    if old is not None and _exempt(old, event):
        return
    findings = write_rules.event_findings(account.name, account.spec, event.name, event.spec,
                                          event.labels)
    if findings:
        raise _violation(f"event {account.name}/{event.name}", findings)


def check_same_account(old: LiveEvent, new: EventWrite) -> None:
    if new.account != old.account:
        raise ConflictError(
            f"event {old.account}/{old.name} ({old.id}) cannot move to account "
            f"'{new.account}': the account is immutable (replace the event instead)")


def name_clash(account: str, name: str, other_id: str) -> ConflictError:
    return ConflictError(f"event {account}/{name} already exists (id {other_id})")


def new_event(event_id: str, write: EventWrite, now: datetime) -> LiveEvent:
    return LiveEvent(id=event_id, account=write.account, name=write.name, spec=write.spec,
                     labels=dict(write.labels), api=write.api, created_at=now, updated_at=now,
                     version=1, managed_by=write.managed_by,
                     last_applied_hash=write.last_applied_hash)


def updated_event(old: LiveEvent, write: EventWrite, now: datetime) -> LiveEvent:
    return old.model_copy(update={
        "name": write.name, "spec": write.spec, "labels": dict(write.labels), "api": write.api,
        "managed_by": write.managed_by, "last_applied_hash": write.last_applied_hash,
        "updated_at": now, "version": old.version + 1})


def new_lock(holder: str, operation: str, ttl_seconds: float, now: datetime,
             pid: int, host: str, accounts: Sequence[str] | None = None) -> LockInfo:
    if ttl_seconds <= 0:
        raise UsageError(f"a lock needs a positive time to live, not {ttl_seconds}s")
    scope = tuple(sorted(set(accounts))) if accounts is not None else None
    if scope == ():
        raise UsageError("a lock on accounts needs at least one account")
    return LockInfo(id=new_lock_id(), holder=holder, pid=pid, host=host, operation=operation,
                    created_at=now, expires_at=now + timedelta(seconds=ttl_seconds),
                    accounts=scope)


def check_lock_free(current: LockInfo | None, now: datetime) -> None:
    if current is not None and current.expires_at > now:
        raise LockedError(current.describe())


def taken_over(stored: Iterable[LockInfo], accounts: Sequence[str] | None,
               now: datetime) -> list[str]:
    """The ids of the stored locks a new lock on ``accounts`` replaces (expired, conflicting);
    ``LockedError`` naming the oldest live conflicting lock when there is one."""
    conflicting = sorted((lock for lock in stored if lock.overlaps(accounts)),
                         key=lambda lock: lock.created_at)
    for lock in conflicting:
        check_lock_free(lock, now)
    return [lock.id for lock in conflicting]


def live_locks(stored: Iterable[LockInfo], now: datetime) -> list[LockInfo]:
    """The stored locks that hold at ``now``, oldest first."""
    return sorted((lock for lock in stored if lock.expires_at > now),
                  key=lambda lock: lock.created_at)


def main_lock(live: list[LockInfo]) -> LockInfo | None:
    """``current_lock``: the whole-state lock, else the oldest account lock (``live`` sorted)."""
    whole = [lock for lock in live if lock.accounts is None]
    return next(iter(whole or live), None)


def renewed_in(stored: list[LockInfo], lock_id: str, ttl_seconds: float,
               now: datetime) -> LockInfo:
    """``renewed_lock`` for lock ``lock_id`` among every stored lock (expired or not); a lock
    no longer stored is refused naming the lock that now holds the state, if any."""
    found = next((lock for lock in stored if lock.id == lock_id), None)
    if found is None:
        raise no_such_lock(lock_id, main_lock(live_locks(stored, now)))
    return renewed_lock(found, lock_id, ttl_seconds, now)


def live_lock(current: LockInfo | None, now: datetime) -> LockInfo | None:
    """The lock if it still holds at ``now``; an expired lock counts as no lock."""
    return current if current is not None and current.expires_at > now else None


def renewed_lock(stored: LockInfo | None, lock_id: str, ttl_seconds: float,
                 now: datetime) -> LockInfo:
    """``stored`` (the lock row, expired or not) extended to ``now + ttl_seconds``; refused
    unless it is still lock ``lock_id`` (not released, not taken over after expiring)."""
    if ttl_seconds <= 0:
        raise UsageError(f"a lock needs a positive time to live, not {ttl_seconds}s")
    if stored is None or stored.id != lock_id:
        raise no_such_lock(lock_id, live_lock(stored, now))
    return stored.model_copy(update={"expires_at": now + timedelta(seconds=ttl_seconds)})


def no_such_lock(lock_id: str, current: LockInfo | None) -> NotFoundError:
    held = f"; the state is held by {current.describe()}" if current else "; the state is unlocked"
    return NotFoundError(f"no lock with id {lock_id}{held}")


def journal_entry(run_id: str, index: int, description: str, status: str, detail: str,
                  at: datetime) -> dict[str, Any]:
    return {"run_id": run_id, "index": index, "description": description, "status": status,
            "detail": detail, "at": at}


def run_summaries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal entries (in recorded order) -> one summary per run, the latest recorded first."""
    runs: dict[str, dict[str, Any]] = {}
    for entry in entries:
        run = runs.pop(entry["run_id"], None) or {
            "run_id": entry["run_id"], "started_at": entry["at"], "steps": 0, "done": 0,
            "failed": 0, "pending": 0}
        run["finished_at"] = entry["at"]
        run["steps"] += 1
        if entry["status"] in ("done", "failed", "pending"):
            run[entry["status"]] += 1
        runs[entry["run_id"]] = run  # re-inserted: dict order is "last recorded"
    return list(reversed(runs.values()))
