"""The CI path over HTTP: plan with a read token, apply with a write token, saved plans, locks.

Every test runs the installed ``convctl`` against its own ``convctl serve`` subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import Server, convctl, convctl_cmd, start_serve

from reconciler.adapters.state.http import HttpProvider

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Server]:
    srv = start_serve(tmp_path / "server")
    yield srv
    srv.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    return tmp_path


def run(server: Server, repo: Path, scope: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"CONVCTL_STATE": server.url, "CONVCTL_TOKEN": server.tokens[scope]}
    return convctl(*args, env=env, cwd=repo)


def live(server: Server) -> tuple[object, object, object]:
    with server.client("admin") as client:
        return (client.get("/v1/accounts").json(), client.get("/v1/events").json(),
                client.get("/v1/locks").json())


def test_ci_flow_over_http(fresh: Server, repo: Path) -> None:
    """Plan with a read token; apply with it is refused (403), nothing changed; apply with a
    write token converges; a saved plan goes stale when the live state moves."""
    _read_token_plans_but_cannot_apply(fresh, repo)
    _write_token_applies_and_converges(fresh, repo)
    _saved_plan_is_refused_when_live_changed(fresh, repo)


def test_locking_over_http(fresh: Server, repo: Path) -> None:
    """An apply fails at once, naming the holder, while another holds the lock; of two applies
    started together one wins and the other names the holder (or finds nothing left to do)."""
    _apply_fails_at_once_while_another_holds_the_lock(fresh, repo)
    events = repo / "manifests/acme/events.yaml"
    events.write_text(events.read_text().replace("amount: 40", "amount: 45", 1))
    _two_applies_at_once(fresh, repo)


def _read_token_plans_but_cannot_apply(fresh: Server, repo: Path) -> None:
    planned = run(fresh, repo, "read", "plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "Plan: 7 to create, 0 to update, 0 to replace, 0 to delete." in planned.stdout
    applied = run(fresh, repo, "read", "apply", "--auto-approve")
    assert applied.returncode == 1
    assert "refused the request (403)" in applied.stderr
    assert "lacks the 'write' scope" in applied.stderr and "Traceback" not in applied.stderr
    assert live(fresh) == ([], [], [])
    missing = convctl("plan", env={"CONVCTL_STATE": fresh.url, "CONVCTL_TOKEN": ""}, cwd=repo)
    assert missing.returncode == 1 and "set CONVCTL_TOKEN" in missing.stderr


def _write_token_applies_and_converges(fresh: Server, repo: Path) -> None:
    applied = run(fresh, repo, "write", "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete" in applied.stdout
    again = run(fresh, repo, "read", "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    accounts, events, locks = live(fresh)
    assert len(accounts) == 2 and len(events) == 7 and locks == []  # type: ignore[arg-type]


def _saved_plan_is_refused_when_live_changed(fresh: Server, repo: Path) -> None:
    events = repo / "manifests/acme/events.yaml"
    events.write_text(events.read_text().replace("amount: 40", "amount: 55", 1))
    saved = run(fresh, repo, "read", "plan", "--out", "plan.json")
    assert saved.returncode == 0, saved.stderr
    with fresh.client("admin") as admin:  # someone edits a live event outside git
        event = admin.get("/v1/events").json()[0]
        write = {k: event[k] for k in ("account", "name", "spec", "labels", "api",
                                       "managed_by", "last_applied_hash")}
        write["labels"] = {**write["labels"], "edited": "by-hand"}
        patched = admin.patch(f"/v1/events/{event['id']}", json=write,
                              headers={"If-Match": str(event["version"])})
        assert patched.status_code == 200, patched.text
    before = live(fresh)
    refused = run(fresh, repo, "write", "apply", "plan.json")
    assert refused.returncode == 1
    assert "saved plan is stale" in refused.stderr and "nothing was applied" in refused.stderr
    assert live(fresh) == before


def _apply_fails_at_once_while_another_holds_the_lock(fresh: Server, repo: Path) -> None:
    other = HttpProvider(fresh.url, fresh.tokens["write"])
    lock = other.acquire_lock("alice@ci", "apply", 600)
    started = time.monotonic()
    blocked = run(fresh, repo, "write", "apply", "--auto-approve")
    assert blocked.returncode == 1 and time.monotonic() - started < 10
    for part in (f"lock {lock.id} held by alice@ci", f"pid {lock.pid}", lock.host, "expires"):
        assert part in blocked.stderr
    assert live(fresh)[:2] == ([], [])
    unlocked = run(fresh, repo, "write", "unlock", lock.id)
    assert unlocked.returncode == 0, unlocked.stderr
    other.close()
    assert run(fresh, repo, "write", "apply", "--auto-approve").returncode == 0


def _two_applies_at_once(fresh: Server, repo: Path) -> None:
    env = {"CONVCTL_STATE": fresh.url, "CONVCTL_TOKEN": fresh.tokens["write"],
           "NO_COLOR": "1"}
    procs = [subprocess.Popen([*convctl_cmd(), "apply", "--auto-approve"], cwd=repo,
                              env={**os.environ, **env,
                                   "CONVCTL_LOCK_HOLDER": f"runner-{i}"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0, results
    for code, err in results:  # a loser saw the lock (it plans only once it holds it)
        if code != 0:
            assert "the state is locked: lock " in err and "held by runner-" in err, err
            assert "Traceback" not in err
    final = run(fresh, repo, "read", "plan", "--detailed-exitcode")
    assert final.returncode == 0 and "No changes." in final.stdout
