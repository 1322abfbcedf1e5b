"""``convctl show PLANFILE``: a saved plan rendered exactly as plan printed it, state untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from clikit import run, shipped_repo

from reconciler.cli.main import cli


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return shipped_repo(tmp_path, monkeypatch)



@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_prints_what_plan_printed(repo: Path, fmt: str) -> None:
    planned = run("plan", "--format", fmt, "--out", "plan.json")
    assert planned.exit_code == 0, planned.output
    shown = run("show", "plan.json", "--format", fmt)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == planned.stdout
    assert "create" in shown.stdout


def test_show_does_not_open_the_state(repo: Path, tmp_path: Path) -> None:
    assert run("plan", "--out", "plan.json").exit_code == 0
    shutil.rmtree(repo / ".convctl")
    res = run("show", "plan.json", "--format", "json")
    assert res.exit_code == 0, res.output
    assert not (repo / ".convctl").exists()
    assert json.loads(res.stdout)["summary"]["create"] == 7


def test_show_refuses_a_plan_from_a_newer_convctl(repo: Path) -> None:
    assert run("plan", "--out", "plan.json").exit_code == 0
    doc = json.loads((repo / "plan.json").read_text())
    doc["plan"]["format_version"] = "9.0"
    (repo / "plan.json").write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["show", "plan.json"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "plan.json" in lines[0] and "'9.0'" in lines[0] and "upgrade convctl" in lines[0]
    assert res.stdout == ""


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"kind": "other"}', b"\xff\xfe"])
def test_show_refuses_what_is_not_a_saved_plan(repo: Path, content: bytes) -> None:
    (repo / "plan.json").write_bytes(content)
    res = CliRunner().invoke(cli, ["show", "plan.json"])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: plan.json ") and len(res.stderr.splitlines()) == 1
    assert "Traceback" not in res.output


def test_show_names_a_missing_file(repo: Path) -> None:
    res = CliRunner().invoke(cli, ["show", "nope.json"])
    assert res.exit_code == 1
    assert "nope.json" in res.stderr


def test_events_list_json_matches_the_live_state(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    assert run("events", "disable", "acme/funnel").exit_code == 0
    res = run("events", "list", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["format_version"] == "1"
    rows = {f"{r['account']}/{r['name']}": r for r in doc["events"]}
    assert len(rows) == 7
    funnel = rows["acme/funnel"]
    assert funnel["enabled"] is False and funnel["drifted"] is True
    assert funnel["trigger"] == "lifecycleStageChange" and funnel["stageCount"] == 4
    assert rows["acme/demo-request"]["formId"] and rows["acme/demo-request"]["stages"] is None
    only = json.loads(run("events", "list", "--account", "globex", "--format", "json").stdout)
    assert {r["account"] for r in only["events"]} == {"globex"}


def test_token_list_json_never_holds_the_secret(repo: Path) -> None:
    created = run("token", "create", "--scope", "read", "--name", "ci-plan")
    secret = created.stdout.strip()
    assert run("token", "revoke", "ci-plan").exit_code == 0
    res = run("token", "list", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["format_version"] == "1"
    [tok] = doc["tokens"]
    assert tok["name"] == "ci-plan" and tok["scopes"] == ["read"] and tok["revokedAt"]
    assert secret not in res.stdout
