"""Test kit for the control plane: start a real server subprocess on a free loopback port.

``start_serve`` runs the installed ``convctl serve`` against a temp SQLite state, with tokens
made by ``convctl token create``; ``start_harness`` runs ``server_harness.py`` (the same app and
uvicorn runner, plus per-request state and clock for the provider contract suite). Both wait
for ``/healthz`` and are stopped with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
SCOPES = ("read", "write", "ingest", "admin")


def convctl_cmd() -> list[str]:
    script = BIN / "convctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler.cli.main"]


def convctl(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*convctl_cmd(), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    state_url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, scope: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_healthy(server: Server, deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited ({server.proc.returncode}):\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server not healthy after {deadline}s:\n{server.output()}")


def launch(cmd: list[str], workdir: Path, port: int,
            env: dict[str, str] | None = None) -> Server:
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, "NO_COLOR": "1", **(env or {})})
    server = Server(url=f"http://127.0.0.1:{port}", proc=proc, log=log)
    _wait_healthy(server)
    return server


def make_tokens(state_url: str) -> dict[str, str]:
    """One token per scope, made by ``convctl token create`` (run side by side)."""
    env = {**os.environ, "NO_COLOR": "1"}
    subprocess.run([*convctl_cmd(), "token", "list", "--state", state_url], env=env,
                   capture_output=True, check=True, timeout=60)  # creates + migrates the file
    procs = {scope: subprocess.Popen(
        [*convctl_cmd(), "token", "create", "--scope", scope, "--name", f"t-{scope}",
         "--state", state_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env) for scope in SCOPES}
    tokens = {}
    for scope, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        tokens[scope] = out.strip()
    return tokens


def start_serve(workdir: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """``convctl serve`` on a fresh state in ``workdir`` (or the ``state.db`` already there),
    with one token per scope; ``env`` adds environment variables."""
    workdir.mkdir(parents=True, exist_ok=True)
    state_url = f"sqlite:///{workdir / 'state.db'}"
    tokens = make_tokens(state_url)
    for _attempt in range(3):
        port = free_port()
        try:
            server = launch([*convctl_cmd(), "serve", "--port", str(port), "--state", state_url,
                              *extra], workdir, port, env)
        except RuntimeError:
            continue
        server.state_url, server.tokens = state_url, tokens
        return server
    raise RuntimeError("could not start convctl serve")


def start_harness(workdir: Path) -> Server:
    """``server_harness.py``: one state per ``X-Test-State``, the clock from ``X-Test-Now``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = launch([sys.executable, str(HERE / "server_harness.py"), str(port),
                      str(workdir)], workdir, port)
    server.tokens = {"admin": (workdir / "admin.token").read_text().strip()}
    return server
