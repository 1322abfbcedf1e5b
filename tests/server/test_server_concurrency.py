"""8 parallel clients racing lifecycle-event creates never take an account above its tier
limit, and every refused create got a 409 ``quota_exceeded`` (R9, product.md §2)."""

from __future__ import annotations

import threading

import httpx
from serverkit import Server
from statekit import account_spec, lifecycle_event

from reconciler.adapters.state.http import HttpProvider
from reconciler.errors import QuotaExceededError

CLIENTS, ATTEMPTS, STAGES, LIMIT = 8, 5, 3, 50  # 120 slots asked for, 48 can be granted


class Recording(httpx.HTTPTransport):
    """Records the status of every create request this client sent."""

    def __init__(self) -> None:
        super().__init__()
        self.create_statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/events"):
            self.create_statuses.append(response.status_code)
        return response


def test_parallel_clients_never_exceed_the_tier_limit(server: Server) -> None:
    admin = HttpProvider(server.url, server.tokens["admin"])
    admin.put_account("race", account_spec(), {}, None)
    transports = [Recording() for _ in range(CLIENTS)]
    outcomes: list[dict[str, list[str]]] = [{"ok": [], "refused": [], "other": []}
                                            for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)

    def client(i: int) -> None:
        provider = HttpProvider(server.url, server.tokens["write"], transport=transports[i])
        start.wait(10)
        for attempt in range(ATTEMPTS):
            try:
                provider.create_event(lifecycle_event(f"c{i}-{attempt}", STAGES, account="race"))
                outcomes[i]["ok"].append(f"c{i}-{attempt}")
            except QuotaExceededError as exc:
                assert "quota exceeded for account 'race'" in str(exc)
                outcomes[i]["refused"].append(str(exc))
            except Exception as exc:  # recorded so the test reports it
                outcomes[i]["other"].append(f"{type(exc).__name__}: {exc}")
        provider.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [o["other"] for o in outcomes] == [[]] * CLIENTS
    events = admin.list_events("race")
    assert sum(e.stage_count for e in events) <= LIMIT
    assert len(events) == LIMIT // STAGES == sum(len(o["ok"]) for o in outcomes)
    statuses = [s for t in transports for s in t.create_statuses]
    assert sorted(set(statuses)) == [201, 409]
    assert statuses.count(409) == sum(len(o["refused"]) for o in outcomes)
    assert statuses.count(409) == CLIENTS * ATTEMPTS - LIMIT // STAGES
    admin.close()
