"""Two ``convctl serve`` processes on one PostgreSQL database (issue 11): writers racing through
both never take an account above its tier limit (R9), and applies racing through both are
serialized by the lock, the losers told who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from serverkit import convctl, convctl_cmd
from test_cli_on_postgres import _serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
from statekit import account_spec
from test_provider_concurrency import ATTEMPTS, WORKERS, _attempt_creates, _check

from reconciler.adapters.state.http import HttpProvider
from reconciler.adapters.state.postgres import PostgresProvider

ROOT = Path(__file__).resolve().parents[2]


def _token(url: str) -> str:
    made = convctl("token", "create", "--scope", "write", "--name", "race", "--state", url)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_creates_racing_through_two_servers_respect_the_quota(
        tmp_path: Path, postgres_url: str) -> None:
    direct = PostgresProvider(postgres_url)
    direct.put_account("acme", account_spec(), {}, None)  # professional: 50 slots
    token = _token(postgres_url)
    servers = [_serve(tmp_path / "one", postgres_url), _serve(tmp_path / "two", postgres_url)]
    try:
        outcomes: list[dict[str, Any]] = [{} for _ in range(WORKERS)]
        barrier = threading.Barrier(WORKERS)

        def work(worker: int) -> None:  # half the writers on each server
            client = HttpProvider(servers[worker % 2].url, token, timeout=30)
            barrier.wait()
            outcomes[worker] = _attempt_creates(client, worker)
            client.close()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        _check(direct, outcomes)  # exactly 16 x 3 = 48 slots granted of 90 asked for
        assert sum(o["accepted"] for o in outcomes) < WORKERS * ATTEMPTS
    finally:
        for server in servers:
            server.stop()
        direct.close()


def test_applies_racing_through_two_servers_are_serialized(
        tmp_path: Path, postgres_url: str) -> None:
    env = {"CONVCTL_TOKEN": _token(postgres_url), "NO_COLOR": "1"}
    servers = [_serve(tmp_path / "one", postgres_url), _serve(tmp_path / "two", postgres_url)]
    try:
        procs = [subprocess.Popen(
            [*convctl_cmd(), "apply", "--auto-approve", "--path", str(ROOT / "manifests"),
             "--state", servers[i % 2].url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, **env}) for i in range(8)]
        results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
        assert all(code in (0, 1) for code, _ in results), results
        assert any(code == 0 for code, _ in results)
        for code, err in results:
            if code == 1:  # a loser: one clear line naming the holder, nothing applied by it
                assert "held by" in err and err.count("\n") == 1, err
        plan = convctl("plan", "--detailed-exitcode", str(ROOT / "manifests"), "--state",
                       postgres_url)
        assert plan.returncode == 0 and "No changes." in plan.stdout
        direct = PostgresProvider(postgres_url)
        assert len(direct.list_events()) == 7 and direct.current_lock() is None
        direct.close()
    finally:
        for server in servers:
            server.stop()
