"""Webhook ingest latency: p50/p99 of a signed 100-event HubSpot webhook request against a real
`convctl serve --no-agent` on loopback (goal from issue 5: p99 under 50 ms).

Each request carries 100 new `contact.propertyChange` events (so every one is a durable insert
in the inbox, not a duplicate), signed v3 over the raw bytes with a fresh timestamp. Two
phases, each bounded in requests and in time: one client in sequence, then 10 clients at once
(HubSpot keeps at most 10 requests in flight per account). Usage:

    python bench/webhook_ingest.py            # 500 requests per phase, at most 20 s each
    python bench/webhook_ingest.py --quick    # 40 requests per phase, at most 5 s each
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats

BIN = Path(sys.executable).parent
CONVCTL = [str(BIN / "convctl")] if (BIN / "convctl").exists() else [
    sys.executable, "-m", "reconciler.cli.main"]
SECRET = "bench-client-secret"
PATH = "/v1/webhooks/hubspot"
GOAL_P99_MS = 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "CONVCTL_HUBSPOT_CLIENT_SECRET": SECRET, "NO_COLOR": "1"}
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([*CONVCTL, "serve", "--no-agent", "--port", str(port), "--state",
                             f"sqlite:///{workdir / 'state.db'}"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("convctl serve did not start")


class Events:
    """Unique webhook bodies, 100 events each (thread-safe counter)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._mutex = threading.Lock()

    def body(self) -> bytes:
        with self._mutex:
            start = next(self._ids)
            for _ in range(99):
                next(self._ids)
        now = time.time_ns() // 1_000_000
        return orjson.dumps([
            {"eventId": n, "subscriptionId": 7001, "portalId": 4412345, "appId": 42,
             "occurredAt": now, "subscriptionType": "contact.propertyChange",
             "attemptNumber": 0, "objectId": 100_000 + n, "propertyName": "lifecyclestage",
             "propertyValue": "customer", "changeSource": "CRM_UI"}
            for n in range(start, start + 100)])


def signed_headers(url: str, body: bytes) -> dict[str, str]:
    ts = str(time.time_ns() // 1_000_000)
    message = f"POST{url}{PATH}".encode() + body + ts.encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    return {"Content-Type": "application/json", "X-HubSpot-Signature-v3": signature.decode(),
            "X-HubSpot-Request-Timestamp": ts}


def phase(url: str, events: Events, clients: int, requests: int, seconds: float) -> list[float]:
    """``clients`` threads share ``requests`` requests, for at most ``seconds``."""
    latencies: list[float] = []
    mutex = threading.Lock()
    budget = iter(range(requests))
    stop = time.monotonic() + seconds

    def worker() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < stop:
                with mutex:
                    if next(budget, None) is None:
                        break
                body = events.body()
                started = time.perf_counter()
                response = client.post(PATH, content=body, headers=signed_headers(url, body))
                mine.append(time.perf_counter() - started)
                if response.status_code != 202 or response.json()["accepted"] != 100:
                    raise SystemExit(f"unexpected answer {response.status_code}: "
                                     f"{response.text[:200]}")
        with mutex:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(clients)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 60)
    return latencies


def quantiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def livez(url: str, requests: int) -> list[float]:
    """The floor: latencies of ``/livez`` (no token, no database) from one client."""
    out = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(requests):
            started = time.perf_counter()
            client.get("/livez").raise_for_status()
            out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 requests, 5 s per phase")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--runs", type=int, default=_stats.MIN_RUNS, help="rounds (at least 3)")
    args = parser.parse_args(argv)
    _stats.compiled()  # children load cached bytecode, as an installed copy does
    requests = max(1, min(args.requests or (40 if args.quick else 500), 10_000))
    seconds = 5.0 if args.quick else 20.0
    runs = _stats.runs(args.runs, args.quick)
    with tempfile.TemporaryDirectory(prefix="convctl-webhook-bench-") as tmp:
        proc, url = start_server(Path(tmp))
        try:
            events = Events()
            phase(url, events, 1, 5, 5.0)  # warm-up: connections, first inserts
            print(f"Signed 100-event webhook requests to `convctl serve --no-agent` ({url}), "
                  f"durable insert before the 202; {_stats.machine()}")
            print(f"{runs} round(s); each round times /livez (the floor: one loopback round "
                  "trip, no token, no database) then each phase; min / median / max over the "
                  "rounds, p50 ratio to the floor's p50 taken per round.\n")
            results: dict[int, list[tuple[float, float, float]]] = {1: [], 10: []}
            floors: list[float] = []
            for _ in range(runs):
                floors.append(quantiles(livez(url, min(requests, 200)))[0])
                for clients in results:
                    started = time.perf_counter()
                    latencies = phase(url, events, clients, requests, seconds)
                    elapsed = time.perf_counter() - started
                    p50, p99 = quantiles(latencies)
                    results[clients].append((len(latencies) * 100 / elapsed, p50, p99))
            print("| clients | events/s | p50 ms | p99 ms | p50 / floor p50 |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for clients, rows in results.items():
                rates, p50s, p99s = ([r[i] for r in rows] for i in range(3))
                print(f"| {clients} client(s) | {_stats.spread(rates, '{:,.0f}')} | "
                      f"{_stats.spread(p50s, '{:.1f}', 1000)} | "
                      f"{_stats.spread(p99s, '{:.1f}', 1000)} | "
                      f"{_stats.ratio_spread(p50s, floors)} |")
            print(f"floor (/livez p50): {_stats.spread(floors, '{:.2f}', 1000)} ms")
            worst = max(r[2] for r in results[1]) * 1000
            verdict = "met" if worst < GOAL_P99_MS else "MISSED"
            print(f"\nGoal: p99 under {GOAL_P99_MS:.0f} ms for one client, in every round: "
                  f"{verdict} (worst {worst:.1f} ms); load at the end: {_stats.load()}")
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
