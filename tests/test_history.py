"""History and audit (issue 14 item 4): every change is an append-only record, read back by
``convctl history`` (SQLite and PostgreSQL), ``GET /v1/runs`` and ``GET /v1/audit`` on a real
``convctl serve``; the record of an apply killed mid-way (SIGKILL) says it was interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from serverkit import convctl, convctl_cmd, start_serve

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def repo(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("CONVCTL_LOCK_HOLDER", "alice@laptop")
    monkeypatch.setenv("CONVCTL_GIT_SHA", "0123456789abcdef")
    if request.param == "postgres":
        monkeypatch.setenv("CONVCTL_STATE", request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def entries(*args: str) -> list[dict[str, Any]]:
    res = run("history", "--format", "json", *args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["format_version"] == "1"
    return list(doc["entries"])


def test_every_change_is_recorded_newest_first(repo: Path) -> None:
    assert run("history").output.strip() == "No history yet."
    assert run("apply", "--account", "acme", "--auto-approve").exit_code == 0
    assert run("events", "disable", "acme/funnel").exit_code == 0
    assert run("events", "delete", "acme/newsletter-signup", "--yes").exit_code == 0
    assert run("import", "--out", "imported").exit_code == 0
    from reconciler.adapters.state import open_provider

    provider = open_provider(None)
    lock = provider.acquire_lock("bob@dead", "apply", 600, accounts=["acme"])
    provider.close()
    assert run("unlock", lock.id).exit_code == 0
    if "postgres" not in os.environ["CONVCTL_STATE"]:  # tokens live in the same SQLite file
        assert run("token", "create", "--scope", "read", "--name", "ci").exit_code == 0
        assert run("token", "revoke", "ci").exit_code == 0
    found = entries("--limit", "50")
    actions = [e["action"] for e in found]
    tokens = ["token-revoke", "token-create"] if "token-create" in actions else []
    assert actions == [*tokens, "unlock", "import", "delete", "disable", "apply"]
    applied = found[-1]
    assert applied["outcome"] == "done" and applied["accounts"] == ["acme"]
    assert applied["actor"] == "alice@laptop" and applied["git_sha"] == "0123456789abcdef"
    assert len(applied["plan_hash"]) == 64
    assert [s["status"] for s in applied["steps"]] == ["done"] * 5
    assert found[-2]["target"] == "acme/funnel" and found[-3]["target"] == "acme/newsletter-signup"
    unlock = found[len(tokens)]
    assert unlock["target"] == lock.id and "bob@dead" in unlock["detail"]
    assert all("cvt_" not in json.dumps(e) for e in found)  # never a token's secret
    assert [e["action"] for e in entries("--account", "globex")] == (
        [*tokens, "import"])  # the whole-state import; nothing else touched globex
    assert len(entries("--limit", "2")) == 2
    text = run("history", "--account", "acme").output
    assert "apply [acme] by alice@laptop: done" in text and "commit=0123456789ab" in text


def test_an_apply_killed_mid_way_is_recorded_as_interrupted(tmp_path: Path,
                                                            postgres_url: str) -> None:
    """The run record is written before the first step: SIGKILL the apply while a step waits
    on a row another session holds, and history still shows the run, interrupted."""
    import psycopg

    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    env = {**os.environ, "NO_COLOR": "1", "CONVCTL_STATE": postgres_url}
    assert convctl("apply", "--auto-approve", env=env, cwd=tmp_path).returncode == 0
    events = tmp_path / "manifests/acme/events.yaml"
    events.write_text(events.read_text().replace("amount: 40", "amount: 55"))
    with psycopg.connect(postgres_url) as blocker:
        blocker.execute("SELECT * FROM accounts WHERE name = 'acme' FOR UPDATE")
        proc = subprocess.Popen([*convctl_cmd(), "apply", "--auto-approve"], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                runs = json.loads(convctl("history", "--format", "json", env=env,
                                          cwd=tmp_path).stdout)["entries"]
                if runs[0]["outcome"] == "interrupted":
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    latest = json.loads(convctl("history", "--format", "json", env=env,
                                cwd=tmp_path).stdout)["entries"]
    assert [e["outcome"] for e in latest] == ["interrupted", "done"]
    assert latest[0]["steps"] == []  # killed while its first step waited
    text = convctl("history", env=env, cwd=tmp_path).stdout
    assert ": interrupted (1 change(s); Plan: 0 to create, 1 to update," in text


def client_get(server: Any, path: str) -> list[dict[str, Any]]:
    with server.client("read") as client:
        return list(client.get(path).json())


def test_runs_and_audit_over_http_name_the_token(tmp_path: Path) -> None:
    server = start_serve(tmp_path / "serve", "--no-agent")
    try:
        shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
        env = {**os.environ, "NO_COLOR": "1", "CONVCTL_STATE": server.url,
               "CONVCTL_TOKEN": server.tokens["write"]}
        done = convctl("apply", "--account", "globex", "--auto-approve", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        with server.client("read") as client:
            runs = client.get("/v1/runs").json()
            audit = client.get("/v1/audit", params={"account": "acme"}).json()
            assert client.get("/v1/runs", params={"limit": 0}).status_code == 422
        with server.client(None) as anonymous:
            assert anonymous.get("/v1/audit").status_code == 401
        assert len(runs) == 1 and runs[0]["outcome"] == "done"
        assert runs[0]["actor"] == "token:t-write" and len(runs[0]["steps"]) == 4
        assert {e["action"] for e in audit} == {"token-create"}  # globex's apply: not acme's
        assert [e["outcome"] for e in client_get(server, "/v1/audit")[:2]] == ["done", "started"]
        history = convctl("history", "--format", "json", env=env, cwd=tmp_path)
        assert history.returncode == 0, history.stderr
        assert json.loads(history.stdout)["entries"][0]["id"] == runs[0]["id"]
    finally:
        server.stop()
