"""The user's path on the embedded state: plan, apply, change, drift, quota error, saved plans.

Runs the CLI in-process (CliRunner) against a real SQLite file, and the installed `convctl`
once as a subprocess for the README's main command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import run, shipped_repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return shipped_repo(tmp_path, monkeypatch, "schemas")



def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_first_plan_creates_everything_and_apply_converges(repo: Path) -> None:
    res = run("plan", "--detailed-exitcode")
    assert res.exit_code == 2, res.output
    assert "Plan: 7 to create, 0 to update, 0 to replace, 0 to delete." in res.output
    res = run("apply", "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "Apply complete" in res.output
    res = run("plan", "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert "No changes." in res.output


def test_change_drift_and_heal(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    edit(repo / "manifests/acme/events.yaml", "amount: 40", "amount: 55")
    res = run("plan")
    assert "1 to update" in res.output and "40" in res.output and "55" in res.output
    assert run("apply", "--auto-approve").exit_code == 0
    res = run("events", "disable", "acme/funnel")
    assert res.exit_code == 0 and "switched off" in res.output
    res = run("plan", "--detailed-exitcode")
    assert res.exit_code == 2 and "funnel" in res.output
    assert "outside" in res.output.lower() or "drift" in res.output.lower()
    assert run("apply", "--auto-approve").exit_code == 0
    assert run("plan", "--detailed-exitcode").exit_code == 0


def test_quota_error_names_account_count_and_limit(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    extra = "".join(
        f"---\napiVersion: convctl/v1\nkind: ConversionEvent\nmetadata: {{name: bulk-{i}}}\n"
        f"spec:\n  account: acme\n  adAccount: act_1234567890\n  trigger:\n"
        f"    lifecycleStageChange:\n      stages: [subscriber, lead, opportunity, customer,"
        f" evangelist]\n" for i in range(10))
    (repo / "manifests/acme/bulk.yaml").write_text(extra)
    res = run("validate")
    assert res.exit_code == 1
    assert "E313" in res.output and "acme" in res.output and "50" in res.output
    res = run("plan")
    assert res.exit_code == 1 and "E313" in res.output
    res = run("plan", "--format", "json")
    assert res.exit_code == 1


def test_saved_plan_applies_exactly_and_refuses_when_stale(repo: Path) -> None:
    assert run("plan", "--out", "plan.json").exit_code == 0
    saved = json.loads((repo / "plan.json").read_text())
    assert saved["plan"]["format_version"]
    assert run("apply", "plan.json").exit_code == 0
    edit(repo / "manifests/acme/events.yaml", "amount: 40", "amount: 41")
    assert run("plan", "--out", "plan2.json").exit_code == 0
    assert run("events", "disable", "globex/pipeline").exit_code == 0
    res = run("apply", "plan2.json")
    assert res.exit_code == 1
    assert "stale" in res.output and "nothing was applied" in res.output
    res = run("events", "show", "acme/demo-request")
    assert json.loads(res.output)["spec"]["trigger"]["formSubmission"]["value"]["amount"] == 40


def test_saved_plan_refused_when_manifests_changed(repo: Path) -> None:
    assert run("plan", "--out", "plan.json").exit_code == 0
    edit(repo / "manifests/acme/events.yaml", "amount: 40", "amount: 41")
    res = run("apply", "plan.json")
    assert res.exit_code == 1 and "manifests changed" in res.output
    assert run("events", "list").output.count("\n") == 1  # header only: nothing applied


def test_apply_without_terminal_needs_auto_approve(repo: Path) -> None:
    res = run("apply")
    assert res.exit_code == 1 and "--auto-approve" in res.output
    assert run("events", "list").output.count("\n") == 1


def test_held_lock_blocks_apply_and_unlock_breaks_it(repo: Path) -> None:
    from reconciler.adapters.state import open_provider

    provider = open_provider(None)
    lock = provider.acquire_lock("bob@ci", "apply", 600)
    provider.close()
    res = run("apply", "--auto-approve")
    assert res.exit_code == 1 and "bob@ci" in res.output and lock.id in res.output
    assert run("unlock", lock.id).exit_code == 0
    assert run("apply", "--auto-approve").exit_code == 0


def test_protected_delete_is_refused(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    path = repo / "manifests/globex/events.yaml"
    text = path.read_text()
    first_doc_end = text.index("---", 10)
    path.write_text(text[:text.index("apiVersion")] + text[first_doc_end + 4:])
    res = run("plan")
    assert res.exit_code == 1 and "contact-sales" in res.output and "protect" in res.output


def test_main_command_as_a_real_process(repo: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    exe = shutil.which("convctl") or f"{sys.executable} -m reconciler.cli.main"
    proc = subprocess.run([*exe.split(), "plan"], capture_output=True, text=True, env=env,
                          cwd=repo, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Plan: 7 to create" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_real_process_exits_fast_with_all_its_output_and_exit_code(repo: Path,
                                                                    tmp_path: Path) -> None:
    """plan and validate end with os._exit (cli/lifetime.py): output redirected to a file (block
    buffered) is still complete, and the exit codes 2 (changes) and 1 (errors) still hold."""
    env = {**os.environ, "NO_COLOR": "1"}
    exe = (shutil.which("convctl") or f"{sys.executable} -m reconciler.cli.main").split()
    expected = run("plan").output
    out = tmp_path / "plan.txt"
    with out.open("w") as sink:
        proc = subprocess.run([*exe, "plan", "--detailed-exitcode"], stdout=sink,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=repo, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert out.read_text() == expected
    assert "Plan: 7 to create" in out.read_text()
    with out.open("w") as sink:
        proc = subprocess.run([*exe, "validate"], stdout=sink, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=repo, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().strip() == run("validate").output.strip()
    edit(sorted((repo / "manifests").rglob("*.yaml"))[0], "apiVersion: convctl/v1", "apiVersion: x")
    proc = subprocess.run([*exe, "plan"], capture_output=True, text=True, env=env, cwd=repo,
                          timeout=60)
    assert proc.returncode == 1
    assert "E009" in proc.stderr and "Traceback" not in proc.stderr


def test_the_collector_is_paused_only_where_nothing_is_freed(repo: Path) -> None:
    """``pause_collector`` (called by plan and validate) switches the cyclic collector off once
    ``lifetime`` is enabled, as in the real process that ends without freeing anything; under
    CliRunner, in this test process, plan and validate leave it on."""
    import gc

    from reconciler.cli import lifetime

    assert run("plan").exit_code == 0 and run("validate").exit_code == 0
    assert gc.isenabled()
    saved = lifetime._kept
    lifetime.enable()  # as the real ``convctl`` does
    try:
        lifetime.pause_collector()
        assert not gc.isenabled()
    finally:
        gc.enable()
        lifetime._kept = saved


def test_corrupt_state_file_is_one_clear_error(repo: Path) -> None:
    (repo / ".convctl").mkdir()
    (repo / ".convctl" / "state.db").write_bytes(b"this is not a database" * 100)
    proc = subprocess.run([sys.executable, "-c", "from reconciler.cli.main import main; main()",
                           "plan"], capture_output=True, text=True, cwd=repo, timeout=60,
                          check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr


def test_events_list_show_enable_disable_delete(repo: Path) -> None:
    """Issue 3 item 7: imperative management of live events (R19), each step seen by plan."""
    assert run("apply", "--auto-approve").exit_code == 0
    listing = run("events", "list", "--account", "acme")
    assert listing.exit_code == 0 and "acme/funnel" in listing.output
    assert "globex/" not in listing.output
    shown = run("events", "show", "acme/funnel")
    data = json.loads(shown.output)
    assert shown.exit_code == 0 and data["name"] == "funnel" and data["spec"]["enabled"] is True
    assert run("events", "disable", data["id"]).exit_code == 0  # by id as well as by name
    assert json.loads(run("events", "show", "acme/funnel").output)["spec"]["enabled"] is False
    assert run("plan", "--detailed-exitcode").exit_code == 2  # drift
    assert run("events", "enable", "acme/funnel").exit_code == 0
    assert run("plan", "--detailed-exitcode").exit_code == 0
    missing = run("events", "show", "acme/nope")
    assert missing.exit_code == 1 and "no live event acme/nope" in missing.output
    refused = run("events", "delete", "acme/funnel")  # CliRunner's stdin is no terminal
    assert refused.exit_code == 1 and "pass --yes" in refused.output
    assert "Usage:" not in refused.output and refused.output.count("\n") == 1
    assert run("events", "delete", "acme/funnel", "--yes").exit_code == 0
    assert "acme/funnel" not in run("events", "list").output
    assert "1 to create" in run("plan").output
    guarded = run("events", "delete", "acme/demo-request", "--yes")  # protect: true
    assert guarded.exit_code == 1 and "is protected (protect: true)" in guarded.output
    assert "acme/demo-request" in run("events", "list").output
    assert run("events", "delete", "acme/demo-request", "--yes", "--force").exit_code == 0
    assert "acme/demo-request" not in run("events", "list").output


def _add_unmanaged(name: str) -> None:
    from reconciler.adapters.state import open_provider
    from reconciler.core.live import EventWrite

    provider = open_provider(None)
    funnel = next(e for e in provider.list_events("acme") if e.name == "funnel")
    provider.create_event(EventWrite(account="acme", name=name, spec=funnel.spec,
                                     managed_by=None))
    provider.close()


def test_unmanaged_kept_unless_prune_unmanaged(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    _add_unmanaged("handmade")
    kept = run("plan", "--detailed-exitcode")
    assert kept.exit_code == 0 and "acme/handmade" in kept.output and "kept" in kept.output
    pruned = run("plan", "--prune-unmanaged", "--format", "json")
    doc = json.loads(pruned.output)
    assert [(c["address"], c["actions"]) for c in doc["changes"]] == [
        ("event.acme/handmade", ["delete"])]
    assert run("apply", "--auto-approve").exit_code == 0  # apply never prunes unasked
    assert "acme/handmade" in run("events", "list").output


def test_mass_delete_needs_the_flag_on_the_command_line(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    events = repo / "manifests/globex/events.yaml"
    events.write_text(events.read_text().replace("protect: true", "protect: false"))
    assert run("apply", "--auto-approve").exit_code == 0
    events.write_text("# every globex event removed\n")
    refused = run("plan")
    assert refused.exit_code == 1 and "E402" in refused.output
    assert "--allow-mass-delete" in refused.output
    allowed = run("plan", "--allow-mass-delete", "--detailed-exitcode")
    assert allowed.exit_code == 2 and "3 to delete" in allowed.output


def test_colour_only_on_a_terminal_and_never_with_no_color(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from reconciler.cli.app import App

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert App(stdout=Tty()).color is True
    assert App(stdout=io.StringIO()).color is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert App(stdout=Tty()).color is False


@pytest.mark.parametrize("damage", ["corrupt", "newer-schema"])
def test_bad_state_file_is_one_line_exit_1_and_left_untouched(repo: Path, damage: str) -> None:
    """Issue 3, bad input: a corrupt or newer-schema state file: one clear message, exit 1,
    state untouched, for every command that reads it."""
    import sqlite3

    state = repo / ".convctl" / "state.db"
    if damage == "corrupt":
        state.parent.mkdir()
        state.write_bytes(b"this is not a database" * 100)
    else:
        assert run("apply", "--auto-approve").exit_code == 0
        conn = sqlite3.connect(state)
        conn.execute("PRAGMA user_version = 999")
        conn.commit()
        conn.close()
    before = state.read_bytes()
    for args in (["plan"], ["apply", "--auto-approve"], ["events", "list"], ["unlock", "x"]):
        proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", *args],
                              capture_output=True, text=True, cwd=repo, timeout=60, check=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert ("corrupt" if damage == "corrupt" else "schema version 999") in proc.stderr
        assert state.read_bytes() == before, args


@pytest.mark.parametrize("value", ["5x", "-1s", "1e3", "５s", "200h"])
def test_lock_timeout_must_be_a_duration(repo: Path, value: str) -> None:
    res = run("apply", "--auto-approve", "--lock-timeout", value)
    assert res.exit_code == 2 and "Invalid value for '--lock-timeout'" in res.output
    assert "Traceback" not in res.output
    assert run("events", "list").output.count("\n") == 1  # nothing applied


def test_saved_empty_plan_says_so(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    assert run("plan", "--out", "plan.json").exit_code == 0
    res = run("apply", "plan.json", "--lock-timeout", "1m30s")
    assert res.exit_code == 0 and "the saved plan is empty and still fresh" in res.output
