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
from click.testing import CliRunner, Result

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVCTL_STATE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


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


def test_corrupt_state_file_is_one_clear_error(repo: Path) -> None:
    (repo / ".convctl").mkdir()
    (repo / ".convctl" / "state.db").write_bytes(b"this is not a database" * 100)
    proc = subprocess.run([sys.executable, "-c", "from reconciler.cli.main import main; main()",
                           "plan"], capture_output=True, text=True, cwd=repo, timeout=60,
                          check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
