"""Long work shows progress on a terminal only (issue 12 item 7): a spinner with what is
being done and the elapsed time on stderr when it is a TTY; nothing when stderr is a pipe,
under --quiet, or with CI set; stdout is never touched."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest
from serverkit import convctl_cmd

REPO = Path(__file__).resolve().parent.parent


def on_a_terminal(args: list[str], cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run convctl with stderr on a pseudo-terminal: (exit code, stdout, what the tty got)."""
    leader, follower = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    full.update(TERM="xterm-256color", COLUMNS="100", **env)
    proc = subprocess.Popen([*convctl_cmd(), *args], stdout=subprocess.PIPE, stderr=follower,
                            cwd=cwd, env=full)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("progress")
    feed = work / "feed.jsonl"
    feed.write_text("".join(f'{{"type": "contact", "portalId": 4412345, "contactId": "{i}"}}\n'
                            for i in range(50)))
    return feed


@pytest.mark.parametrize("what", ["validate", "ingest", "dry run"])
def test_progress_shows_on_a_terminal_only(what: str, backfill: Path) -> None:
    work = backfill.parent
    state = f"sqlite:///{work / 's.db'}"
    args, label = {
        "validate": (["validate", str(REPO / "manifests")], "Validating"),
        "ingest": (["agent", "ingest", str(backfill), "--state", state], "Ingesting"),
        "dry run": (["agent", "run", "--once", "--dry-run", str(work / "out.jsonl"), "--state",
                     state], "Processing and delivering"),
    }[what]
    code, out, tty = on_a_terminal(args, work)
    assert code == 0 and label in tty and "0:00:0" in tty  # spinner, label, elapsed time
    assert label not in out
    for extra, env in (([], {"CI": "true"}), (["--quiet"], {})):
        code, out, tty = on_a_terminal([*args, *extra], work, **env)
        assert code == 0 and label not in tty, (extra, env)
    piped = subprocess.run([*convctl_cmd(), *args], capture_output=True, text=True, cwd=work,
                           check=False, timeout=60)
    assert piped.returncode == 0 and label not in piped.stderr + piped.stdout
