"""Control-plane load on loopback: requests/s and p50/p99 for list and PATCH, and `convctl plan`
over HTTP vs on the embedded SQLite state for 10,000 events (goal: under 2x).

Starts a real `convctl serve` on a free 127.0.0.1 port over a temp state, seeds it in process,
then runs bounded phases (each capped in time and in requests). Usage:

    python bench/serve_load.py            # 10,000 events, 3 s per load phase
    python bench/serve_load.py --quick    # 200 events, 0.5 s per phase (CI smoke)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats

BIN = Path(sys.executable).parent
CONVCTL = [str(BIN / "convctl")] if (BIN / "convctl").exists() else [
    sys.executable, "-m", "reconciler.cli.main"]
ACCOUNTS = 10
MAX_REQUESTS = 200_000


def account_yaml(name: str, portal: int) -> str:
    return f"""apiVersion: convctl/v1
kind: Account
metadata: {{name: {name}}}
spec:
  portalId: {portal}
  tier: enterprise
  leadSync: true
  forms:
    - {{id: 0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10, name: Demo request}}
  facebook:
    businessId: "1122334455"
    pixelId: "123456789012345"
    adAccounts: [act_1234567890]
    accessToken: {{env: BENCH_TOKEN}}
"""


def event_yaml(account: str, i: int) -> str:
    return f"""---
apiVersion: convctl/v1
kind: ConversionEvent
metadata: {{name: ev-{i:05d}}}
spec:
  account: {account}
  adAccount: act_1234567890
  trigger:
    formSubmission:
      formId: 0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10
      facebookEvent: Lead
      consent: {{property: fb_consent, value: "yes"}}
  dataSharing: {{properties: [email, phone]}}
"""


def write_manifests(root: Path, n_events: int) -> None:
    per = n_events // ACCOUNTS
    for a in range(ACCOUNTS):
        name = f"acct-{a:02d}"
        events = "".join(event_yaml(name, a * per + i) for i in range(per))
        text = account_yaml(name, 4412345 + a) + events
        (root / f"{name}.yaml").write_text(text)


def seed(state: Path, manifests: Path) -> None:
    """Make the live state equal to the manifests (so plan says No changes)."""
    from reconciler.adapters.manifests import load
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.core.live import EventWrite

    found, diags = load([manifests])
    assert not diags.has_errors, [d.render() for d in diags.errors][:3]
    provider = SqliteProvider(state)
    for account in found.accounts:
        provider.put_account(account.model.name, account.model.spec,
                             dict(account.model.metadata.labels), None)
    for event in found.events:
        provider.create_event(EventWrite.from_manifest(event.model))
    provider.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(state_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    token = subprocess.run([*CONVCTL, "token", "create", "--scope", "write", "--state",
                            state_url], capture_output=True, text=True, check=True).stdout
    port = free_port()
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([*CONVCTL, "serve", "--port", str(port), "--state", state_url,
                             "--no-agent"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url, token.strip()
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("convctl serve did not start")


def load_phase(url: str, token: str, kind: str, seconds: float, threads: int) -> list[float]:
    """Run ``kind`` (list | patch) from ``threads`` clients for ``seconds``; latencies in s."""
    latencies: list[float] = []
    mutex = threading.Lock()
    deadline: list[float] = []  # set once every client has done its set-up request
    ready = threading.Barrier(threads, action=lambda: deadline.append(time.monotonic() + seconds))

    def worker(n: int) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as client:
            event = client.get("/v1/events", params={"account": "load"}).json()[n]
            body = {k: event[k] for k in ("account", "name", "spec", "labels", "api",
                                          "managed_by", "last_applied_hash")}
            version = event["version"]
            ready.wait(timeout=120)
            while time.monotonic() < deadline[0] and len(mine) < MAX_REQUESTS // threads:
                started = time.perf_counter()
                if kind == "list":
                    response = client.get("/v1/accounts/load/events")
                else:
                    body["labels"] = {"n": str(version)}
                    response = client.patch(f"/v1/events/{event['id']}", json=body,
                                            headers={"If-Match": str(version)})
                    version += 1
                response.raise_for_status()
                mine.append(time.perf_counter() - started)
        with mutex:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 60)
    return latencies


def seed_list_account(url: str, token: str, n: int) -> None:
    from reconciler.core.models import AccountSpec

    spec = {"portalId": 1, "tier": "enterprise", "forms": [{"id": "f", "name": "F"}], "facebook": {
        "businessId": "1122334455", "pixelId": "123456789012345",
        "adAccounts": ["act_1"], "accessToken": {"env": "X"}}}
    AccountSpec.model_validate(spec)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        client.put("/v1/accounts/load", json={"spec": spec}).raise_for_status()
        for i in range(n):
            client.post("/v1/accounts/load/events", json={"name": f"e{i}", "spec": {
                "account": "load", "adAccount": "act_1", "trigger": {"formSubmission": {
                    "formId": "f", "facebookEvent": "Lead",
                    "consent": {"property": "c", "value": "yes"}}}}}).raise_for_status()


def report(kind: str, phases: list[tuple[list[float], float]]) -> None:
    """One row from every phase of ``kind``: requests/s, p50 and p99, min / median / max."""
    rates, p50s, p99s = [], [], []
    for latencies, seconds in phases:
        ordered = sorted(latencies)
        if not ordered:
            continue
        rates.append(len(ordered) / seconds)
        p50s.append(statistics.median(ordered))
        p99s.append(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])
    total = sum(len(latencies) for latencies, _ in phases)
    print(f"| {kind} | {total:,} | {_stats.spread(rates, '{:,.0f}')} | "
          f"{_stats.spread(p50s, '{:.1f}', 1000)} | {_stats.spread(p99s, '{:.1f}', 1000)} |")


def time_plans(manifests: Path, states: dict[str, str], token: str, runs: int,
               ) -> dict[str, list[float]]:
    """Wall seconds of ``convctl plan`` on each state, interleaved round by round."""
    env = {**os.environ, "CONVCTL_TOKEN": token, "NO_COLOR": "1"}
    times: dict[str, list[float]] = {name: [] for name in states}
    for _ in range(runs):
        for name, state in states.items():
            started = time.perf_counter()
            done = subprocess.run([*CONVCTL, "plan", str(manifests), "--state", state],
                                  capture_output=True, text=True, env=env, timeout=600,
                                  check=False)
            times[name].append(time.perf_counter() - started)
            if done.returncode != 0 or "No changes." not in done.stdout:
                raise SystemExit(f"plan failed ({state}): {done.stdout[-500:]}"
                                 f"{done.stderr[-500:]}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 events, 0.5 s per phase")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    _stats.compiled()  # children load cached bytecode, as an installed copy does
    n_events = args.events or (200 if args.quick else 10_000)
    seconds = min(args.seconds or (0.5 if args.quick else 3.0), 30.0)
    with tempfile.TemporaryDirectory(prefix="convctl-serve-load-") as tmp:
        root = Path(tmp)
        (root / "manifests").mkdir()
        write_manifests(root / "manifests", n_events)
        seed(root / "state.db", root / "manifests")
        state_url = f"sqlite:///{root / 'state.db'}"
        proc, url, token = start_server(state_url, root)
        try:
            runs = _stats.runs(_stats.MIN_RUNS, args.quick)
            print(_stats.machine())
            plans = time_plans(root / "manifests", {"embedded": state_url, "http": url}, token,
                               runs)
            seed_list_account(url, token, 50)
            print(f"convctl serve on {url}: {args.threads} clients, {seconds:g} s per phase, "
                  f"{runs} phase(s) each, list = GET of a 50-event account, patch = full "
                  "replace with If-Match; min / median / max over the phases")
            print("| op | requests | req/s | p50 ms | p99 ms |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for kind in ("list", "patch"):
                phases = []
                for _ in range(runs):
                    phases.append((load_phase(url, token, kind, seconds, args.threads),
                                   seconds))
                report(kind, phases)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"convctl plan, {n_events:,} events in {ACCOUNTS} accounts, min / median / max of "
          f"{runs}: embedded SQLite {_stats.spread(plans['embedded'])} s, HTTP "
          f"{_stats.spread(plans['http'])} s, HTTP / embedded per round "
          f"{_stats.ratio_spread(plans['http'], plans['embedded'])} (goal < 2x); load at the "
          f"end: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
