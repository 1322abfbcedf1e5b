"""Account locks on every backend (issue 14 item 2): locks on disjoint accounts coexist, locks
sharing an account conflict, and a whole-state lock conflicts with every lock."""

from __future__ import annotations

import pytest
from statekit import FakeClock

from reconciler.core.provider import Provider
from reconciler.errors import LockedError, NotFoundError


def test_locks_on_different_accounts_coexist(provider: Provider) -> None:
    acme = provider.acquire_lock("alice", "apply", 600, accounts=["acme"])
    globex = provider.acquire_lock("bob", "apply", 600, accounts=["globex"])
    assert acme.accounts == ("acme",) and globex.accounts == ("globex",)
    assert {lock.id for lock in provider.current_locks()} == {acme.id, globex.id}
    assert "of account acme" in acme.describe()
    provider.release_lock(acme.id)
    assert [lock.id for lock in provider.current_locks()] == [globex.id]


def test_locks_sharing_an_account_conflict(provider: Provider) -> None:
    first = provider.acquire_lock("alice", "apply", 600, accounts=["acme", "globex"])
    with pytest.raises(LockedError, match=f"lock {first.id} held by alice"):
        provider.acquire_lock("bob", "apply", 600, accounts=["globex", "initech"])
    assert [lock.id for lock in provider.current_locks()] == [first.id]
    assert provider.acquire_lock("carol", "apply", 600, accounts=["initech"]).holder == "carol"


def test_the_whole_state_lock_conflicts_with_every_lock(provider: Provider) -> None:
    acme = provider.acquire_lock("alice", "apply", 600, accounts=["acme"])
    with pytest.raises(LockedError, match=f"lock {acme.id} held by alice"):
        provider.acquire_lock("ops", "import", 600)
    provider.release_lock(acme.id)
    whole = provider.acquire_lock("ops", "import", 600)
    assert whole.accounts is None and "of the whole state" in whole.describe()
    with pytest.raises(LockedError, match=f"lock {whole.id} held by ops"):
        provider.acquire_lock("bob", "apply", 600, accounts=["globex"])
    assert provider.current_lock() == whole


def test_current_lock_prefers_the_whole_state_lock(provider: Provider,
                                                   clock: FakeClock) -> None:
    assert provider.current_locks() == []
    acme = provider.acquire_lock("alice", "apply", 600, accounts=["acme"])
    assert provider.current_lock() == acme


@pytest.mark.fake_clock
def test_expired_account_lock_is_taken_over_and_renewed_by_id(provider: Provider,
                                                              clock: FakeClock) -> None:
    old = provider.acquire_lock("alice", "apply", 60, accounts=["acme"])
    other = provider.acquire_lock("bob", "apply", 600, accounts=["globex"])
    clock.advance(61)
    assert provider.current_locks() == [other]
    new = provider.acquire_lock("carol", "apply", 60, accounts=["acme"])
    with pytest.raises(NotFoundError):
        provider.renew_lock(old.id, 60)
    assert provider.renew_lock(new.id, 120).id == new.id
    assert {lock.id for lock in provider.current_locks()} == {new.id, other.id}
