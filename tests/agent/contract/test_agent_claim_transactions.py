"""Claims held by transactions on a shared PostgreSQL agent store (issue 11 items 4 and 9):
a killed agent's rows are free at once (its connection dies, PostgreSQL rolls back), two stores
never hold one row however their calls interleave, and delivery's pages (settled batch by
batch) stay whole until committed, through a real ``Deliverer``; a database of the lease era
upgrades with every row. The lease of a stalled agent: ``test_agent_claims.py``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from itertools import count

import psycopg
from agentio import FakeClock
from agentkit import account, lifecycle_event
from conftest import NOW, open_agent_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_agent_store_contract import PIXEL, change, outbox

from reconciler.adapters.state.postgres_schema import MIGRATIONS
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.models import AccountSpec
from reconciler.core.networks import Outcome
from reconciler.services.agent import DEFAULT_POLICY
from reconciler.services.delivery import PAGE_BATCHES, Deliverer
from reconciler.services.ports import AgentStore

CLAIMER = """
import sys, time
from reconciler.adapters.agentstore_pg import PostgresAgentStore
store = PostgresAgentStore(sys.argv[1], lease_seconds=600)
print(len(store.pending(10)), len(store.due(time.time(), 10)), flush=True)
time.sleep(600)
"""


def test_a_killed_agents_claims_are_free_at_once(postgres_url: str) -> None:
    """Its lease is 600 s, yet its rows go to the others as soon as its process is gone."""
    alive = open_agent_store(postgres_url, lease_seconds=600)
    proc = None
    try:
        alive.ingest([(e.source_id, e) for e in (change(str(n)) for n in range(3))])
        alive.commit_processed([], [outbox("a"), outbox("b")], {})
        proc = subprocess.Popen([sys.executable, "-c", CLAIMER, postgres_url],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().split() == ["3", "2"]
        assert alive.pending(10) == [] and alive.due(time.time(), 10) == []
        assert alive.status().claimed == 5
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        while alive.status().claimed and time.monotonic() - killed < 10:
            time.sleep(0.02)
        assert time.monotonic() - killed < 5
        assert len(alive.pending(10)) == 3 and len(alive.due(time.time(), 10)) == 2
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        alive.close()


# -- two stores, any interleaving --------------------------------------------------------------

OPS = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(
    ["pending", "commit", "release_inbox", "due", "mark_sent", "release_outbox"]),
    st.integers(1, 4)), max_size=25)
_examples = count()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_two_stores_never_hold_one_row(postgres_url: str, ops: list[tuple[int, str, int]]
                                       ) -> None:
    """Whatever the order of claims, acknowledgements, settlements and give-backs of two
    stores: the rows each holds are disjoint, no row is processed or marked sent twice, and
    afterwards one store finds every row left (nothing skipped)."""
    run = next(_examples)
    stores = [open_agent_store(postgres_url) for _ in range(2)]
    inbox: list[set[int]] = [set(), set()]  # held by each store, per the store's answers
    outgoing: list[set[int]] = [set(), set()]
    processed: list[int] = []
    sent: list[int] = []
    try:
        events = [change(f"{run}-{n}") for n in range(8)]
        stores[0].ingest([(e.source_id, e) for e in events])
        stores[0].commit_processed([], [outbox(f"{run}-{n}") for n in range(8)], {})
        for index, op, n in ops:
            _apply(stores[index], op, n, inbox[index], outgoing[index], processed, sent)
            assert inbox[0].isdisjoint(inbox[1]) and outgoing[0].isdisjoint(outgoing[1])
        assert len(processed) == len(set(processed)) and len(sent) == len(set(sent))
        for store in stores:
            store.release_claims()
        rest = stores[1].pending(100)
        assert len(rest) + len(processed) == 8 and not {r.seq for r in rest} & set(processed)
        stores[1].commit_processed([r.seq for r in rest], [], {})
        due = stores[1].due(time.time() + 3600, 100)
        assert len(due) + len(sent) == 8 and not {r.seq for r in due} & set(sent)
        stores[1].mark_sent([r.seq for r in due])
        stores[1].release_claims()
        assert stores[0].status().claimed == 0
    finally:
        for store in stores:
            store.close()


def _apply(store: AgentStore, op: str, n: int, inbox: set[int], outgoing: set[int],
           processed: list[int], sent: list[int]) -> None:
    """One call of one store, and what it holds afterwards (the page rule: ``due`` commits
    the page before, ``release_claims`` gives back and commits)."""
    if op == "pending":
        inbox.update(r.seq for r in store.pending(n))
    elif op == "commit" and inbox:
        store.commit_processed(sorted(inbox), [], {})
        processed.extend(inbox)
        inbox.clear()
    elif op == "release_inbox":
        store.release_claims("inbox")
        inbox.clear()
    elif op == "due":
        page = store.due(time.time() + 3600, n)
        outgoing.clear()
        outgoing.update(r.seq for r in page)
        assert not outgoing & set(sent), "a row marked sent was claimed again"
    elif op == "mark_sent" and outgoing:
        fresh = sorted(outgoing - set(sent))
        store.mark_sent(fresh)
        sent.extend(fresh)
    elif op == "release_outbox":
        store.release_claims("outbox")
        outgoing.clear()


# -- delivery's pages --------------------------------------------------------------------------

class OneAccount:
    """The live state: account ``acme`` (Meta pixel ``PIXEL``), one enabled event ``ev_1``."""

    def list_accounts(self) -> list[LiveAccount]:
        return [account()]

    def list_events(self, account: str | None = None) -> list[LiveEvent]:
        return [lifecycle_event(id="ev_1")]


class Peeking:
    """Meta, taking every batch; before answering it asks another store for due rows (given
    back at once) and notes what that store could take and saw sent."""

    network = "meta"

    def __init__(self, other: AgentStore, clock: FakeClock) -> None:
        self.other, self.clock = other, clock
        self.batches: list[list[bytes]] = []
        self.seen: list[tuple[set[str], int]] = []

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome:
        assert target == PIXEL
        self.batches.append(list(events))
        taken = {r.event_id for r in self.other.due(self.clock.epoch(), 100)}
        self.other.release_claims("outbox")
        self.seen.append((taken, self.other.status().outbox["sent"]))
        return Outcome("sent")

    def close(self) -> None:
        pass


def test_delivery_holds_each_page_whole_until_it_is_committed(postgres_url: str) -> None:
    """A page (5 batches) is settled batch by batch and committed once: while it is being sent
    no other agent can take any row of it, sent or not, and it sees none of it sent; the next
    page starts with the one before committed."""
    clock = FakeClock(NOW)
    mine, other = (open_agent_store(postgres_url, clock) for _ in range(2))
    try:
        ids = [f"e{n:02}" for n in range(13)]
        mine.commit_processed([], [outbox(i, "ev_1") for i in ids], {})
        peek = Peeking(other, clock)
        deliverer = Deliverer(mine, OneAccount(), {"meta": peek}, clock=clock,
                              rand=lambda: 0.5, policy=DEFAULT_POLICY,
                              resolve=lambda ref: "token", batch_size=2)
        assert deliverer.deliver_once().sent == 13
        page = 2 * PAGE_BATCHES
        assert [len(b) for b in peek.batches] == [2] * PAGE_BATCHES + [2, 1]
        assert all(taken == set(ids[page:]) and shown == 0
                   for taken, shown in peek.seen[:PAGE_BATCHES])
        assert all(taken == set() and shown == page for taken, shown in peek.seen[PAGE_BATCHES:])
        assert other.status().outbox == {"queued": 0, "sent": 13, "dead": 0}
        assert other.status().claimed == 0  # the pass gave everything back
    finally:
        mine.close()
        other.close()


# -- the upgrade -------------------------------------------------------------------------------

def test_upgrading_drops_the_lease_columns_and_keeps_every_row(postgres_url: str) -> None:
    """A database of the lease era (schema 6), rows leased by an agent that is gone: the
    appended step drops the lease columns, every row survives and can be claimed at once."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE convctl_schema (version INTEGER PRIMARY KEY, description "
                     "TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for version, (description, statements) in enumerate(MIGRATIONS[:6], 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO convctl_schema (version, description) VALUES (%s, %s)",
                         (version, description))
        conn.execute("INSERT INTO agent_inbox (dedup_key, kind, portal_id, body, received_at, "
                     "claimed_by, lease_until) SELECT 'k' || g, 'x', 1, '{}', now(), 'gone', "
                     "now() + interval '1 hour' FROM generate_series(1, 3) g")
    store = open_agent_store(postgres_url)
    try:
        with psycopg.connect(postgres_url) as conn:
            columns = {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name IN "
                "('agent_inbox', 'agent_outbox')").fetchall()}
        assert not {"claimed_by", "lease_until"} & columns
        status = store.status()
        assert (status.inbox_new, status.claimed) == (3, 0) and store.has_pending()
    finally:
        store.close()
