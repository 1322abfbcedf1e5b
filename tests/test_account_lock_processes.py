"""Per-account locks with real `convctl` processes (issue 14 item 2), on SQLite and PostgreSQL.

An interactive `apply --account acme` holds acme's lock while it asks (on a pseudo-terminal).
Meanwhile an apply on globex runs to the end (the two overlap in time), while a second apply
on acme, and an unscoped apply (the whole state), are refused naming the holder.
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import convctl, convctl_cmd
from test_apply_processes import PROMPT, Interactive

ROOT = Path(__file__).resolve().parents[1]


class ScopedInteractive(Interactive):
    """`convctl apply --account NAME` on a pseudo-terminal."""

    def __init__(self, repo: Path, env: dict[str, str], account: str) -> None:
        self.master, slave = pty.openpty()
        self.out = repo / "interactive.out"
        with self.out.open("w") as sink:
            self.proc = subprocess.Popen([*convctl_cmd(), "apply", "--account", account],
                                         cwd=repo, stdin=slave, stdout=sink,
                                         stderr=subprocess.STDOUT,
                                         env={**env, "CONVCTL_LOCK_HOLDER": "alice@tty"})
        os.close(slave)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    import shutil

    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    state = (request.getfixturevalue("postgres_url") if request.param == "postgres"
             else f"sqlite:///{tmp_path / 'state.db'}")
    return {**os.environ, "NO_COLOR": "1", "CONVCTL_STATE": state}


@pytest.fixture
def acme_apply(tmp_path: Path, env: dict[str, str]) -> Iterator[ScopedInteractive]:
    session = ScopedInteractive(tmp_path, env, "acme")
    yield session
    session.close()


def test_applies_on_two_accounts_overlap_and_on_one_account_do_not(
        tmp_path: Path, env: dict[str, str], acme_apply: ScopedInteractive) -> None:
    acme_apply.wait_for(PROMPT)  # acme's lock is held from here until it is answered
    globex = convctl("apply", "--account", "globex", "--auto-approve", env=env, cwd=tmp_path)
    assert globex.returncode == 0, globex.stderr
    assert "Apply complete: 4 step(s) done" in globex.stdout
    same = convctl("apply", "--account", "acme", "--auto-approve", env=env, cwd=tmp_path)
    assert same.returncode == 1
    assert "held by alice@tty" in same.stderr and "of account acme" in same.stderr
    whole = convctl("apply", "--auto-approve", env=env, cwd=tmp_path)
    assert whole.returncode == 1 and "held by alice@tty" in whole.stderr
    waited = convctl("apply", "--account", "acme", "--auto-approve", "--lock-timeout", "1s",
                     env=env, cwd=tmp_path)
    assert waited.returncode == 1 and "still locked after 1s" in waited.stderr
    assert acme_apply.answer("yes") == 0
    assert "Apply complete: 5 step(s) done" in acme_apply.out.read_text()
    clean = convctl("plan", "--detailed-exitcode", env=env, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
