"""An in-memory live state: a real fake with the SQLite backend's semantics, for tests.

Same ids, versions, quota refusals (R9), lock and journal as ``sqlite.py``; one mutex makes every
operation atomic, so concurrent writers behave as they would against the embedded store. Models
are copied on the way in and out so callers never share mutable state with the store.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

from reconciler.adapters.state import _rules as rules
from reconciler.core.live import EventWrite, LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec
from reconciler.core.provider import AuditRecord, LockInfo
from reconciler.core.write_rules import NetworkUse


class MemoryProvider:
    """A process-local ``Provider``; ``clock`` returns the current (UTC) time."""

    def __init__(self, clock: rules.Clock | None = None) -> None:
        self._clock = clock or rules.utc_now
        self._mutex = threading.RLock()
        self._accounts: dict[str, LiveAccount] = {}
        self._events: dict[str, LiveEvent] = {}
        self._locks: dict[str, LockInfo] = {}
        self._journal: list[dict[str, Any]] = []
        self._audit: list[AuditRecord] = []

    # -- reads ------------------------------------------------------------------------------

    def list_accounts(self) -> list[LiveAccount]:
        with self._mutex:
            return [a.model_copy(deep=True) for _, a in sorted(self._accounts.items())]

    def list_events(self, account: str | None = None) -> list[LiveEvent]:
        with self._mutex:
            found = [e for e in self._events.values() if account in (None, e.account)]
            return [e.model_copy(deep=True) for e in sorted(found, key=lambda e: e.key)]

    def get_event(self, event_id: str) -> LiveEvent:
        with self._mutex:
            return self._event(event_id).model_copy(deep=True)

    # -- writes -----------------------------------------------------------------------------

    def put_account(self, name: str, spec: AccountSpec, labels: dict[str, str],
                    expected_version: int | None) -> LiveAccount:
        rules.check_account_rules(name, spec, labels)
        with self._mutex:
            old = self._accounts.get(name)
            rules.check_account_version(name, expected_version, old.version if old else None)
            if old is not None:
                rules.check_tier_change(name, old.spec, spec, self._used(name))
                rules.check_account_networks(name, spec, lambda: self._network_uses(name))
            account = LiveAccount(name=name, spec=spec.model_copy(deep=True), labels=dict(labels),
                                  version=old.version + 1 if old else 1, updated_at=self._clock())
            self._accounts[name] = account
            return account.model_copy(deep=True)

    def create_event(self, event: EventWrite) -> LiveEvent:
        with self._mutex:
            rules.check_write(event)
            account = self._account(event.account)
            rules.check_event_rules(account, event)
            self._check_name_free(event.account, event.name, None)
            used = self._used(event.account)
            rules.check_quota(account, used, used + event.stage_count)
            created = rules.new_event(rules.new_event_id(), event.model_copy(deep=True),
                                      self._clock())
            self._events[created.id] = created
            return created.model_copy(deep=True)

    def update_event(self, event_id: str, event: EventWrite, expected_version: int) -> LiveEvent:
        with self._mutex:
            old = self._event(event_id)
            rules.check_event_version(old, expected_version)
            rules.check_same_account(old, event)
            rules.check_write(event)
            account = self._account(event.account)
            rules.check_event_rules(account, event, old)
            self._check_name_free(event.account, event.name, event_id)
            used = self._used(event.account)
            after = used - old.stage_count + event.stage_count
            rules.check_quota(account, used, after)
            updated = rules.updated_event(old, event.model_copy(deep=True), self._clock())
            self._events[event_id] = updated
            return updated.model_copy(deep=True)

    def delete_event(self, event_id: str, expected_version: int | None = None) -> None:
        with self._mutex:
            rules.check_event_version(self._event(event_id), expected_version)
            del self._events[event_id]

    # -- lock -------------------------------------------------------------------------------

    def acquire_lock(self, holder: str, operation: str, ttl_seconds: float, *,
                     pid: int | None = None, host: str | None = None,
                     accounts: Sequence[str] | None = None) -> LockInfo:
        with self._mutex:
            now = self._clock()
            for old in rules.taken_over(self._locks.values(), accounts, now):
                del self._locks[old]
            lock = rules.new_lock(holder, operation, ttl_seconds, now,
                                  os.getpid() if pid is None else pid,
                                  host or socket.gethostname(), accounts)
            self._locks[lock.id] = lock
            return lock

    def renew_lock(self, lock_id: str, ttl_seconds: float) -> LockInfo:
        with self._mutex:
            lock = rules.renewed_in(list(self._locks.values()), lock_id, ttl_seconds,
                                    self._clock())
            self._locks[lock_id] = lock
            return lock

    def release_lock(self, lock_id: str) -> None:
        with self._mutex:
            if self._locks.pop(lock_id, None) is None:
                raise rules.no_such_lock(lock_id, self.current_lock())

    def current_lock(self) -> LockInfo | None:
        return rules.main_lock(self.current_locks())

    def current_locks(self) -> list[LockInfo]:
        with self._mutex:
            return rules.live_locks(self._locks.values(), self._clock())

    # -- journal ----------------------------------------------------------------------------

    def record_step(self, run_id: str, index: int, description: str, status: str,
                    detail: str = "") -> None:
        with self._mutex:
            self._journal.append(rules.journal_entry(run_id, index, description, status, detail,
                                                     self._clock()))

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        with self._mutex:
            return [dict(entry) for entry in self._journal if entry["run_id"] == run_id]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._mutex:
            return rules.run_summaries(list(self._journal))[:limit]
    # -- audit ------------------------------------------------------------------------------

    def record_audit(self, record: AuditRecord) -> None:
        with self._mutex:
            self._audit.append(record)

    def audit_log(self, limit: int = 100) -> list[AuditRecord]:
        with self._mutex:
            return list(reversed(self._audit))[:limit]

    def close(self) -> None:
        """Nothing to release; the data stays readable (a shared ``memory://NAME`` store)."""

    # -- helpers ----------------------------------------------------------------------------

    def _account(self, name: str) -> LiveAccount:
        account = self._accounts.get(name)
        if account is None:
            raise rules.unknown_account(name)
        return account

    def _event(self, event_id: str) -> LiveEvent:
        event = self._events.get(event_id)
        if event is None:
            raise rules.unknown_event(event_id)
        return event

    def _used(self, account: str) -> int:
        return sum(e.stage_count for e in self._events.values() if e.account == account)

    def _network_uses(self, account: str) -> list[NetworkUse]:
        names: dict[str, list[str]] = {}
        for e in self._events.values():
            if e.account == account:
                names.setdefault(e.spec.destination, []).append(e.name)
        return [NetworkUse(n, min(found), len(found)) for n, found in names.items()]

    def _check_name_free(self, account: str, name: str, own_id: str | None) -> None:
        for other in self._events.values():
            if other.account == account and other.name == name and other.id != own_id:
                raise rules.name_clash(account, name, other.id)
