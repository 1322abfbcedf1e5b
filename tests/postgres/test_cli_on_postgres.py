"""Every command on the live state works on PostgreSQL with the outputs and exit codes it has on
SQLite (issue 11): the README walkthrough, the CLI's user paths, and ``convctl serve`` (two of
them on one database).

The CLI tests of ``test_cli_plan_apply`` are imported, so pytest runs them here a second time,
with this module's ``repo`` fixture: the same folder, but ``CONVCTL_STATE`` is a fresh
PostgreSQL database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serverkit import Server, convctl, convctl_cmd, free_port, launch
from test_cli_plan_apply import (  # noqa: F401  (collected again, on PostgreSQL)
    test_apply_without_terminal_needs_auto_approve,
    test_change_drift_and_heal,
    test_events_list_show_enable_disable_delete,
    test_first_plan_creates_everything_and_apply_converges,
    test_held_lock_blocks_apply_and_unlock_breaks_it,
    test_main_command_as_a_real_process,
    test_mass_delete_needs_the_flag_on_the_command_line,
    test_protected_delete_is_refused,
    test_quota_error_names_account_count_and_limit,
    test_saved_plan_applies_exactly_and_refuses_when_stale,
    test_saved_plan_refused_when_manifests_changed,
    test_unmanaged_kept_unless_prune_unmanaged,
)
from test_readme import BIN, extract_blocks, session_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVCTL_STATE", postgres_url)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def test_the_readme_walkthrough_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    blocks = extract_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    for folder in ("manifests", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    script = tmp_path / "session.sh"
    script.write_text(session_script(blocks, "README.md"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVCTL_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1",
               CONVCTL_STATE=postgres_url)
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / ".convctl" / "state.db").exists()  # it all went to PostgreSQL


def _serve(workdir: Path, state: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = launch([*convctl_cmd(), "serve", "--port", str(port), "--state", state,
                     "--no-agent"], workdir, port)
    server.state_url = state
    return server


def test_two_servers_on_one_database(tmp_path: Path, postgres_url: str) -> None:
    password = postgres_url.split(":")[2].split("@")[0]
    made = convctl("token", "create", "--scope", "write", "--name", "ci", "--state", postgres_url)
    assert made.returncode == 0, made.stderr
    env = {"CONVCTL_TOKEN": made.stdout.strip()}
    first, second = _serve(tmp_path / "one", postgres_url), _serve(tmp_path / "two", postgres_url)
    try:
        manifests = str(ROOT / "manifests")
        applied = convctl("apply", "--auto-approve", "--path", manifests, "--state", first.url,
                          env=env)
        assert applied.returncode == 0, applied.stderr
        planned = convctl("plan", "--detailed-exitcode", manifests, "--state", second.url,
                          env=env)
        assert planned.returncode == 0 and "No changes." in planned.stdout, planned.stderr
        direct = convctl("plan", "--detailed-exitcode", manifests, "--state", postgres_url)
        assert direct.returncode == 0, direct.stderr
    finally:
        for server in (first, second):  # both stopped before any check can fail
            server.stop()
        for server in (first, second):
            log = server.output()
            # the URL is shown with its credentials masked (``user:***@`` or the log's mask)
            assert password not in log
            assert "postgresql://" not in log or "***@" in log
