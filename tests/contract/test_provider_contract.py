"""The contract every live-state backend passes (product.md §2): run once per ``provider``."""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta

import pytest
from statekit import START, FakeClock, account_spec, form_event, lifecycle_event

from reconciler.core.live import LiveEvent
from reconciler.core.provider import Provider, RunHistory
from reconciler.errors import ConflictError, LockedError, NotFoundError, UsageError


def _acme(provider: Provider, tier: str = "professional", name: str = "acme") -> None:
    provider.put_account(name, account_spec(tier), {"env": "prod"}, None)


# -- accounts --------------------------------------------------------------------------------

def test_empty_state(provider: Provider) -> None:
    assert provider.list_accounts() == []
    assert provider.list_events() == []
    assert provider.current_lock() is None


@pytest.mark.fake_clock
def test_put_account_round_trip(provider: Provider) -> None:
    spec = account_spec("enterprise")
    created = provider.put_account("acme", spec, {"env": "prod"}, None)
    assert (created.name, created.version, created.updated_at) == ("acme", 1, START)
    [listed] = provider.list_accounts()
    assert listed == created
    assert listed.spec == spec and listed.labels == {"env": "prod"} and listed.limit == 100


@pytest.mark.fake_clock
def test_put_account_update_increments_version(provider: Provider, clock: FakeClock) -> None:
    _acme(provider)
    clock.advance(60)
    new_spec = account_spec("enterprise", leadSync=False)
    updated = provider.put_account("acme", new_spec, {}, 1)
    assert (updated.version, updated.spec, updated.labels) == (2, new_spec, {})
    assert updated.updated_at == clock.now()
    assert provider.list_accounts() == [updated]


def test_accounts_are_listed_by_name(provider: Provider) -> None:
    for name in ("zeta", "acme", "mid"):
        _acme(provider, name=name)
    assert [a.name for a in provider.list_accounts()] == ["acme", "mid", "zeta"]


def test_put_account_create_of_existing_is_refused(provider: Provider) -> None:
    _acme(provider)
    with pytest.raises(ConflictError, match="account 'acme' already exists"):
        _acme(provider)


def test_put_account_stale_version_is_refused(provider: Provider) -> None:
    _acme(provider)
    provider.put_account("acme", account_spec("enterprise"), {}, 1)
    with pytest.raises(ConflictError, match="expected version 1, live version is 2"):
        provider.put_account("acme", account_spec("professional"), {}, 1)
    assert provider.list_accounts()[0].spec.tier == "enterprise"


def test_put_account_update_of_unknown_account(provider: Provider) -> None:
    with pytest.raises(NotFoundError, match="account 'ghost'"):
        provider.put_account("ghost", account_spec(), {}, 3)


# -- events: round trips -------------------------------------------------------------------

@pytest.mark.fake_clock
def test_create_event_round_trip(provider: Provider) -> None:
    _acme(provider)
    write = lifecycle_event("funnel", 4)
    created = provider.create_event(write)
    assert re.fullmatch(r"ev_[0-9a-f]{16}", created.id)
    assert (created.account, created.name, created.spec, created.labels) == (
        "acme", "funnel", write.spec, {"team": "growth"})
    assert (created.version, created.created_at, created.updated_at) == (1, START, START)
    assert (created.api, created.managed_by, created.last_applied_hash) == (
        "enhanced", "convctl", "h-funnel")
    assert provider.get_event(created.id) == created
    assert provider.list_events() == [created]


def test_form_event_round_trip(provider: Provider) -> None:
    _acme(provider)
    write = form_event("demo-request").model_copy(update={"api": "legacy", "managed_by": None})
    created = provider.create_event(write)
    again = provider.get_event(created.id)
    assert again == created and again.spec == write.spec
    assert (again.api, again.managed_by, again.stage_count) == ("legacy", None, 0)


def test_ids_are_unique(provider: Provider) -> None:
    _acme(provider)
    ids = {provider.create_event(form_event(f"form-{i}")).id for i in range(20)}
    assert len(ids) == 20


def test_list_events_filters_by_account_and_sorts_by_name(provider: Provider) -> None:
    _acme(provider)
    _acme(provider, name="beta")
    for name in ("b", "a"):
        provider.create_event(form_event(name))
    provider.create_event(form_event("c", account="beta"))
    assert [str(e.key) for e in provider.list_events()] == ["acme/a", "acme/b", "beta/c"]
    assert [e.name for e in provider.list_events("beta")] == ["c"]
    assert provider.list_events("nobody") == []


@pytest.mark.fake_clock
def test_update_event_replaces_content_and_increments_version(
        provider: Provider, clock: FakeClock) -> None:
    _acme(provider)
    created = provider.create_event(lifecycle_event("funnel", 2))
    clock.advance(30)
    write = lifecycle_event("funnel-2", 3).model_copy(
        update={"labels": {}, "last_applied_hash": "h2"})
    updated = provider.update_event(created.id, write, 1)
    assert (updated.id, updated.version, updated.name, updated.spec) == (
        created.id, 2, "funnel-2", write.spec)
    assert (updated.labels, updated.last_applied_hash) == ({}, "h2")
    assert (updated.created_at, updated.updated_at) == (START, clock.now())
    assert provider.get_event(created.id) == updated
    assert provider.update_event(created.id, write, 2).version == 3


def test_delete_event(provider: Provider) -> None:
    _acme(provider)
    first = provider.create_event(form_event("one"))
    second = provider.create_event(form_event("two"))
    provider.delete_event(first.id, 1)
    provider.delete_event(second.id)
    assert provider.list_events() == []
    with pytest.raises(NotFoundError, match=first.id):
        provider.get_event(first.id)
    with pytest.raises(NotFoundError):
        provider.delete_event(first.id)


def test_unknown_event(provider: Provider) -> None:
    _acme(provider)
    with pytest.raises(NotFoundError, match="ev_0000000000000000"):
        provider.get_event("ev_0000000000000000")
    with pytest.raises(NotFoundError):
        provider.update_event("ev_0000000000000000", form_event("x"), 1)


# -- events: refusals ----------------------------------------------------------------------

def _unchanged(provider: Provider, event: LiveEvent) -> None:
    assert provider.list_events() == [event]


def test_stale_update_is_refused_and_changes_nothing(provider: Provider) -> None:
    _acme(provider)
    created = provider.create_event(form_event("demo"))
    current = provider.update_event(created.id, form_event("demo", enabled=False), 1)
    with pytest.raises(ConflictError) as refused:
        provider.update_event(created.id, form_event("demo", protect=True), 1)
    assert str(refused.value) == (
        f"event acme/demo ({created.id}) was changed by someone else: expected version 1, "
        "live version is 2")
    _unchanged(provider, current)


def test_stale_delete_is_refused_and_changes_nothing(provider: Provider) -> None:
    _acme(provider)
    created = provider.create_event(form_event("demo"))
    with pytest.raises(ConflictError, match="expected version 7, live version is 1"):
        provider.delete_event(created.id, 7)
    _unchanged(provider, created)


def test_create_for_unknown_account(provider: Provider) -> None:
    with pytest.raises(NotFoundError, match="account 'ghost' does not exist"):
        provider.create_event(form_event("demo", account="ghost"))
    assert provider.list_events() == []


def test_name_clash_is_refused(provider: Provider) -> None:
    _acme(provider)
    _acme(provider, name="beta")
    created = provider.create_event(form_event("demo"))
    with pytest.raises(ConflictError, match=f"event acme/demo already exists \\(id {created.id}"):
        provider.create_event(lifecycle_event("demo", 1))
    provider.create_event(form_event("demo", account="beta"))  # other account: fine
    other = provider.create_event(form_event("other"))
    with pytest.raises(ConflictError, match="acme/demo already exists"):
        provider.update_event(other.id, form_event("demo"), 1)
    assert len(provider.list_events()) == 3


def test_update_cannot_move_an_event_to_another_account(provider: Provider) -> None:
    _acme(provider)
    _acme(provider, name="beta")
    created = provider.create_event(form_event("demo"))
    with pytest.raises(ConflictError, match="account is immutable"):
        provider.update_event(created.id, form_event("demo", account="beta"), 1)
    _unchanged(provider, created)


def test_spec_account_must_match_the_event_account(provider: Provider) -> None:
    _acme(provider)
    _acme(provider, name="beta")
    write = form_event("demo").model_copy(update={"account": "beta"})
    with pytest.raises(ConflictError, match=r"spec\.account is 'acme'"):
        provider.create_event(write)


# -- quota (R7, R9) ------------------------------------------------------------------------

@pytest.mark.parametrize(("tier", "limit"), [("professional", 50), ("enterprise", 100)])
def test_quota_is_refused_above_the_limit(provider: Provider, tier: str, limit: int) -> None:
    _acme(provider, tier)
    provider.create_event(lifecycle_event("big", limit - 3))
    provider.create_event(lifecycle_event("three", 3))  # exactly at the limit: allowed
    with pytest.raises(ConflictError) as refused:
        provider.create_event(lifecycle_event("one-more", 1))
    assert str(refused.value) == (
        f"quota exceeded for account 'acme': {tier} allows {limit} lifecycle-stage events, "
        f"this write would make {limit + 1} (R9)")
    assert [e.name for e in provider.list_events()] == ["big", "three"]


def test_quota_message_names_the_count_of_the_write(provider: Provider) -> None:
    _acme(provider)
    provider.create_event(lifecycle_event("funnel", 49))
    with pytest.raises(ConflictError, match=r"professional allows 50 lifecycle-stage events, "
                                            r"this write would make 53 \(R9\)$"):
        provider.create_event(lifecycle_event("four", 4))


def test_each_stage_counts_one(provider: Provider) -> None:
    _acme(provider)
    for i in range(10):
        provider.create_event(lifecycle_event(f"five-{i}", 5))
    assert sum(e.stage_count for e in provider.list_events()) == 50
    with pytest.raises(ConflictError, match="would make 51"):
        provider.create_event(lifecycle_event("one", 1))


def test_form_events_never_count(provider: Provider) -> None:
    _acme(provider)
    provider.create_event(lifecycle_event("full", 50))
    for i in range(5):
        provider.create_event(form_event(f"form-{i}"))
    assert len(provider.list_events()) == 6


def test_quota_is_per_account(provider: Provider) -> None:
    _acme(provider)
    _acme(provider, name="beta")
    provider.create_event(lifecycle_event("full", 50))
    provider.create_event(lifecycle_event("full", 50, account="beta"))


def test_update_growth_is_checked_and_shrinking_allowed(provider: Provider) -> None:
    _acme(provider)
    big = provider.create_event(lifecycle_event("big", 40))
    small = provider.create_event(lifecycle_event("small", 10))
    with pytest.raises(ConflictError, match="would make 51"):
        provider.update_event(small.id, lifecycle_event("small", 11), 1)
    assert provider.get_event(small.id) == small
    provider.update_event(small.id, lifecycle_event("small", 10), 1)  # same size at the limit
    provider.update_event(big.id, lifecycle_event("big", 30), 1)
    provider.update_event(small.id, lifecycle_event("small", 20), 2)
    provider.update_event(small.id, form_event("small"), 3)  # lifecycle -> form frees slots


def test_delete_frees_quota(provider: Provider) -> None:
    _acme(provider)
    full = provider.create_event(lifecycle_event("full", 50))
    provider.delete_event(full.id, 1)
    provider.create_event(lifecycle_event("again", 50))


def test_lowering_the_tier_below_use_is_refused(provider: Provider) -> None:
    _acme(provider, "enterprise")
    event = provider.create_event(lifecycle_event("funnel", 60))
    with pytest.raises(ConflictError) as refused:
        provider.put_account("acme", account_spec("professional"), {}, 1)
    assert str(refused.value) == (
        "cannot change account 'acme' to tier professional: its events use 60 lifecycle-stage "
        "slots and professional allows 50 (R9)")
    assert provider.list_accounts()[0].spec.tier == "enterprise"
    provider.update_event(event.id, lifecycle_event("funnel", 50), 1)
    assert provider.put_account("acme", account_spec("professional"), {}, 1).version == 2


def test_raising_the_tier_is_always_allowed(provider: Provider) -> None:
    _acme(provider)
    provider.create_event(lifecycle_event("full", 50))
    provider.put_account("acme", account_spec("enterprise"), {}, 1)
    provider.create_event(lifecycle_event("more", 50))


# -- lock ----------------------------------------------------------------------------------

@pytest.mark.fake_clock
def test_lock_acquire_and_describe(provider: Provider, clock: FakeClock) -> None:
    lock = provider.acquire_lock("ci@main", "apply", 600)
    assert (lock.holder, lock.operation, lock.pid, lock.host) == (
        "ci@main", "apply", os.getpid(), socket.gethostname())
    assert (lock.created_at, (lock.expires_at - lock.created_at).total_seconds()) == (START, 600)
    assert provider.current_lock() == lock


@pytest.mark.fake_clock
def test_lock_conflict_names_the_holder(provider: Provider, clock: FakeClock) -> None:
    lock = provider.acquire_lock("alice", "apply", 600)
    clock.advance(599)
    with pytest.raises(LockedError) as refused:
        provider.acquire_lock("bob", "apply", 600)
    message = str(refused.value)
    assert message == lock.describe()
    for part in (lock.id, "alice", f"pid {os.getpid()}", socket.gethostname(),
                 "expires 2026-03-01 12:10:00 UTC"):
        assert part in message
    assert provider.current_lock() == lock


@pytest.mark.fake_clock
def test_expired_lock_is_taken_over(provider: Provider, clock: FakeClock) -> None:
    old = provider.acquire_lock("alice", "apply", 60)
    clock.advance(60)
    assert provider.current_lock() is None
    new = provider.acquire_lock("bob", "apply", 60)
    assert new.id != old.id and new.holder == "bob" and new.created_at == clock.now()
    with pytest.raises(NotFoundError, match=f"no lock with id {old.id}.*held by bob"):
        provider.release_lock(old.id)
    assert provider.current_lock() == new


def test_release_lock(provider: Provider) -> None:
    lock = provider.acquire_lock("alice", "apply", 60)
    provider.release_lock(lock.id)
    assert provider.current_lock() is None
    with pytest.raises(NotFoundError, match="the state is unlocked"):
        provider.release_lock(lock.id)
    provider.acquire_lock("bob", "apply", 60)


def test_release_of_an_expired_lock(provider: Provider, clock: FakeClock) -> None:
    lock = provider.acquire_lock("alice", "apply", 60)
    clock.advance(3600)
    provider.release_lock(lock.id)
    assert provider.current_lock() is None


def test_lock_needs_a_positive_ttl(provider: Provider) -> None:
    with pytest.raises(UsageError):
        provider.acquire_lock("alice", "apply", 0)


@pytest.mark.fake_clock
def test_renewed_lock_outlives_its_first_ttl(provider: Provider, clock: FakeClock) -> None:
    """Issue 10 item 2: a running apply keeps its lock past the TTL by renewing it."""
    lock = provider.acquire_lock("alice", "apply", 60)
    clock.advance(50)
    renewed = provider.renew_lock(lock.id, 60)
    assert (renewed.id, renewed.holder, renewed.created_at) == (lock.id, "alice", START)
    assert renewed.expires_at == clock.now() + timedelta(seconds=60)
    clock.advance(50)  # 100 s after taking it: past the first TTL, within the renewed one
    assert provider.current_lock() == renewed
    with pytest.raises(LockedError, match=f"lock {lock.id} held by alice"):
        provider.acquire_lock("bob", "apply", 60)


@pytest.mark.fake_clock
def test_an_expired_lock_nobody_took_can_be_renewed(provider: Provider,
                                                    clock: FakeClock) -> None:
    lock = provider.acquire_lock("alice", "apply", 60)
    clock.advance(90)
    assert provider.current_lock() is None
    assert provider.renew_lock(lock.id, 60).expires_at == clock.now() + timedelta(seconds=60)
    assert provider.current_lock() is not None and provider.current_lock().id == lock.id


def test_renewing_a_released_lock_is_refused(provider: Provider) -> None:
    lock = provider.acquire_lock("alice", "apply", 60)
    provider.release_lock(lock.id)  # `convctl unlock ID`
    with pytest.raises(NotFoundError, match=f"no lock with id {lock.id}; the state is unlocked"):
        provider.renew_lock(lock.id, 60)
    assert provider.current_lock() is None


@pytest.mark.fake_clock
def test_renewing_a_lock_taken_over_is_refused(provider: Provider, clock: FakeClock) -> None:
    old = provider.acquire_lock("alice", "apply", 60)
    clock.advance(61)
    new = provider.acquire_lock("bob", "apply", 60)
    with pytest.raises(NotFoundError, match=f"no lock with id {old.id}.*held by bob"):
        provider.renew_lock(old.id, 60)
    assert provider.current_lock() == new


def test_lock_renewal_needs_a_positive_ttl(provider: Provider) -> None:
    lock = provider.acquire_lock("alice", "apply", 60)
    with pytest.raises(UsageError):
        provider.renew_lock(lock.id, 0)
    assert provider.current_lock() == lock


# -- journal -------------------------------------------------------------------------------

@pytest.mark.fake_clock
def test_journal_round_trip(provider: Provider, clock: FakeClock) -> None:
    provider.record_step("run-1", 0, "create acme/demo", "done")
    clock.advance(5)
    provider.record_step("run-2", 0, "delete acme/old", "pending")
    provider.record_step("run-1", 1, "update acme/funnel", "failed", "quota exceeded (R9)")
    provider.record_step("run-1", 1, "update acme/funnel", "done")
    assert provider.journal("run-1") == [
        {"run_id": "run-1", "index": 0, "description": "create acme/demo", "status": "done",
         "detail": "", "at": START},
        {"run_id": "run-1", "index": 1, "description": "update acme/funnel", "status": "failed",
         "detail": "quota exceeded (R9)", "at": clock.now()},
        {"run_id": "run-1", "index": 1, "description": "update acme/funnel", "status": "done",
         "detail": "", "at": clock.now()},
    ]
    assert [s["description"] for s in provider.journal("run-2")] == ["delete acme/old"]
    assert provider.journal("nope") == []


@pytest.mark.fake_clock
def test_run_history_newest_first(provider: Provider, clock: FakeClock) -> None:
    """The dashboard's Runs page (optional: a backend without it shows no history)."""
    if not isinstance(provider, RunHistory):
        pytest.skip(f"{type(provider).__name__} keeps no run history (RunHistory is optional)")
    provider.record_step("run-1", 0, "create acme/demo", "done")
    clock.advance(5)
    provider.record_step("run-2", 0, "delete acme/old", "failed", "conflict")
    provider.record_step("run-2", 1, "create acme/new", "pending")
    provider.record_step("run-1", 1, "update acme/funnel", "done")  # run-1 recorded last
    runs = provider.runs()
    assert [r["run_id"] for r in runs] == ["run-1", "run-2"]
    assert runs[0] == {"run_id": "run-1", "started_at": START, "finished_at": clock.now(),
                       "steps": 2, "done": 2, "failed": 0, "pending": 0}
    assert (runs[1]["failed"], runs[1]["pending"]) == (1, 1)
    assert [r["run_id"] for r in provider.runs(1)] == ["run-1"]
