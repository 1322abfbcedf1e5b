"""Claims on a shared PostgreSQL agent store (issue 11 item 4), held by transactions: several
agents take disjoint work, nothing is skipped, a stalled agent's claims come back when its lease
ends (on the database clock), a page is settled in one commit, and a store gives back at once
what it claimed and did not settle. A killed agent's, and delivery's pages through a real
``Deliverer``: ``test_agent_claim_transactions.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from conftest import open_agent_store
from test_agent_store_contract import PIXEL, change, outbox

from reconciler.errors import StoreUnavailableError
from reconciler.services.ports import AgentStore


@pytest.fixture
def two(postgres_url: str) -> Iterator[tuple[AgentStore, AgentStore]]:
    first, second = (open_agent_store(postgres_url, lease_seconds=1.0) for _ in range(2))
    yield first, second
    first.close()
    second.close()


def test_two_agents_claim_disjoint_chunks_and_skip_nothing(
        two: tuple[AgentStore, AgentStore]) -> None:
    a, b = two
    events = [change(str(n)) for n in range(10)]
    a.ingest([(e.source_id, e) for e in events])
    mine, theirs = a.pending(4), b.pending(100)
    assert len(mine) == 4 and len(theirs) == 6
    assert {r.seq for r in mine}.isdisjoint(r.seq for r in theirs)
    assert a.pending(100) == mine  # its own claims, again; none of the other's
    b.commit_processed([r.seq for r in theirs], [], {})
    assert not b.has_pending() and b.pending(100) == []  # the rest is a's, under its lease
    a.commit_processed([r.seq for r in mine], [], {})
    assert a.status().as_json()["inbox"] == {"new": 0, "processed": 10}


def test_a_stalled_agents_claims_return_when_the_lease_ends(
        two: tuple[AgentStore, AgentStore]) -> None:
    """An agent alive but not answering holds its rows for the lease at most (the server ends
    its idle transaction); its next statement fails as a lost connection, which it retries."""
    stalled, alive = two
    stalled.ingest([("k", change())])
    stalled.commit_processed([], [outbox("a")], {})
    claimed, due = stalled.pending(10), stalled.due(time.time(), 10)
    assert alive.pending(10) == [] and alive.due(time.time(), 10) == []
    assert alive.status().claimed == 2 and not alive.has_pending()
    next_due = alive.next_due()
    assert next_due is not None and next_due > time.time()  # not before the lease ends
    time.sleep(1.3)  # the stalled store's lease (1 s, the database clock) ends
    assert alive.status().claimed == 0 and alive.has_pending()
    assert [r.seq for r in alive.pending(10)] == [r.seq for r in claimed]
    assert [r.seq for r in alive.due(time.time(), 10)] == [r.seq for r in due]
    with pytest.raises(StoreUnavailableError, match="claims went back to the others"):
        stalled.commit_processed([r.seq for r in claimed], [], {})
    with pytest.raises(StoreUnavailableError):
        stalled.mark_sent([r.seq for r in due])
    alive.commit_processed([r.seq for r in claimed], [], {})
    assert stalled.pending(10) == [] and stalled.due(time.time(), 10) == []  # back at work
    alive.mark_sent([r.seq for r in due])
    alive.release_claims()
    assert stalled.status().outbox == {"queued": 0, "sent": 1, "dead": 0}


def test_released_claims_go_to_the_other_agent_at_once(
        two: tuple[AgentStore, AgentStore]) -> None:
    a, b = two
    a.ingest([("k", change())])
    a.commit_processed([], [outbox("a")], {})
    assert a.pending(10) and a.due(time.time(), 10)
    a.release_claims()
    assert len(b.pending(10)) == 1 and len(b.due(time.time(), 10)) == 1


def test_each_half_gives_back_only_its_own_claims(two: tuple[AgentStore, AgentStore]) -> None:
    """A running agent delivers while it processes: delivery's give-back leaves the inbox rows
    being processed claimed (another agent would process them twice), and processing's leaves
    the rows being sent."""
    a, b = two
    a.ingest([("k", change())])
    a.commit_processed([], [outbox("a")], {})
    assert a.pending(10) and a.due(time.time(), 10)
    a.release_claims("outbox")
    assert b.pending(10) == [] and len(b.due(time.time(), 10)) == 1
    b.release_claims()
    assert a.due(time.time(), 10)
    a.release_claims("inbox")
    assert b.due(time.time(), 10) == [] and len(b.pending(10)) == 1


def test_a_page_is_settled_in_one_commit(two: tuple[AgentStore, AgentStore]) -> None:
    """Delivery settles a page batch by batch: every row of it stays claimed until the page is
    committed (the next page, or the give-back), so no other agent takes a row of it meanwhile,
    settled or not."""
    a, b = two
    a.commit_processed([], [outbox("a"), outbox("b"), outbox("c")], {})
    sent, retried, _ = a.due(time.time(), 10)
    a.mark_sent([sent.seq])
    a.reschedule([retried.seq], 0.0, "HTTP 500")
    assert b.due(time.time(), 10) == [] and b.status().outbox["sent"] == 0
    assert b.status().claimed == 3
    a.release_claims("outbox")
    assert [r.event_id for r in b.due(time.time(), 10)] == ["b", "c"]
    assert b.status().outbox == {"queued": 2, "sent": 1, "dead": 0}
    b.release_claims()
    assert [r.event_id for r in a.due(time.time(), 1)] == ["b"]
    a.dead([retried.seq], "rejected", "no")
    assert [r.event_id for r in a.due(time.time(), 10, after_seq=retried.seq)] == ["c"]
    assert b.status().outbox["dead"] == 1  # the next page committed the one before


def test_agents_racing_over_one_inbox_process_each_row_once(postgres_url: str) -> None:
    """Four stores claim and acknowledge chunks concurrently: every row is processed by one of
    them, and the outbox gets one row per event_id however the claims interleave."""
    stores = [open_agent_store(postgres_url) for _ in range(4)]
    events = [change(str(n)) for n in range(400)]
    stores[0].ingest([(e.source_id, e) for e in events])
    taken: list[list[int]] = [[] for _ in stores]

    def work(index: int) -> None:
        store = stores[index]
        while rows := store.pending(7):
            store.commit_processed([r.seq for r in rows],
                                   [outbox(r.event.source_id) for r in rows], {})
            taken[index] += [r.seq for r in rows]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        every = [seq for seqs in taken for seq in seqs]
        assert len(every) == len(set(every)) == len(events)
        assert sum(1 for seqs in taken if seqs) >= 2  # the work was shared
        status = stores[0].status()
        assert (status.inbox_new, status.inbox_processed, status.claimed) == (0, 400, 0)
        assert status.outbox == {"queued": 400, "sent": 0, "dead": 0}
        assert status.pixels == {PIXEL: {"queued": 400, "sent": 0, "dead": 0}}
    finally:
        for store in stores:
            store.close()
