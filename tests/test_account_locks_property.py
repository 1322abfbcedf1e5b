"""A property of account locks (issue 14 item 2): whatever locks are asked for, in any order,
no two live locks ever share an account, and a whole-state lock is only ever alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters.state.memory import MemoryProvider
from reconciler.errors import LockedError

ACCOUNTS = ["acme", "globex", "initech", "umbrella"]
asks = st.lists(st.one_of(st.none(), st.lists(st.sampled_from(ACCOUNTS), min_size=1,
                                               max_size=3)), max_size=12)
releases = st.lists(st.integers(0, 11), max_size=6)


@given(asks, releases)
def test_live_locks_never_overlap(requests: list[list[str] | None], drop: list[int]) -> None:
    provider = MemoryProvider()
    for n, accounts in enumerate(requests):
        held = provider.current_locks()
        clash = any(lock.overlaps(accounts) for lock in held)
        try:
            provider.acquire_lock(f"holder-{n}", "apply", 600, accounts=accounts)
        except LockedError:
            assert clash
        else:
            assert not clash
        if n in drop and provider.current_locks():
            provider.release_lock(provider.current_locks()[0].id)
        live = provider.current_locks()
        for i, one in enumerate(live):
            assert all(not one.overlaps(other.accounts) for other in live[i + 1:])
        assert all(lock.accounts is not None for lock in live) or len(live) == 1
