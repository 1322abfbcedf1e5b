"""``--account`` scope on validate, plan and apply (issue 14 item 1), on SQLite and PostgreSQL.

Through the CLI: a scoped plan or apply sees only the named accounts (no deletes, no writes in
the others), an unknown account is one line and exit 1 with nothing written, and a saved plan
keeps its scope.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def repo(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    if request.param == "postgres":
        monkeypatch.setenv("CONVCTL_STATE", request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv("CONVCTL_STATE", raising=False)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def live() -> dict[str, dict[str, object]]:
    listing = run("events", "list", "--format", "json")
    assert listing.exit_code == 0, listing.output
    data = json.loads(listing.output)
    return {f"{e['account']}/{e['name']}": e for e in data["events"]}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_scoped_plan_and_apply_leave_other_accounts_alone(repo: Path) -> None:
    res = run("apply", "--account", "acme", "--auto-approve")
    assert res.exit_code == 0, res.output
    assert set(live()) == {"acme/demo-request", "acme/newsletter-signup", "acme/funnel",
                           "acme/demo-booked"}  # globex neither created nor touched
    assert run("apply", "--auto-approve").exit_code == 0
    before = live()
    shutil.rmtree(repo / "manifests/globex")  # acme's team keeps only its own repo
    edit(repo / "manifests/acme/events.yaml", "amount: 40", "amount: 55")
    scoped = run("plan", "--account", "acme")
    assert scoped.exit_code == 0, scoped.output
    assert "1 to update" in scoped.output and "0 to delete" in scoped.output
    assert "globex" not in scoped.output
    # Without --account every account the manifests or the live state hold is planned.
    assert "3 to delete" in run("plan", "--allow-mass-delete").output
    assert run("apply", "--account", "acme", "--auto-approve").exit_code == 0
    after = live()
    globex = {k: v for k, v in before.items() if k.startswith("globex/")}
    assert {k: after[k] for k in globex} == globex  # same ids, versions, specs
    assert after["acme/demo-request"]["version"] == before["acme/demo-request"]["version"] + 1


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_unknown_account_is_one_line_and_writes_nothing(repo: Path, command: str) -> None:
    assert run("apply", "--account", "globex", "--auto-approve").exit_code == 0
    before = live()
    extra = ["--auto-approve"] if command == "apply" else []
    res = run(command, "--account", "acme", "--account", "nope", *extra)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown account 'nope' in --account")
    assert "no manifest in manifests mentions it" in lines[0]
    assert ("no live account" in lines[0]) == (command != "validate")
    assert live() == before


def test_an_account_only_live_is_known_to_plan(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    shutil.rmtree(repo / "manifests/globex")
    res = run("plan", "--account", "globex", "--allow-mass-delete")
    assert "3 to delete" in res.output and "unknown account" not in res.output
    assert "E401" in res.output  # live, declared nowhere: planned (protect still holds)
    assert "acme" not in res.output


def test_saved_plan_keeps_its_scope(repo: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0
    edit(repo / "manifests/acme/events.yaml", "amount: 40", "amount: 55")
    edit(repo / "manifests/globex/events.yaml", "name: pipeline", "name: pipeline2")
    assert run("plan", "--account", "acme", "--out", "acme.json").exit_code == 0
    assert json.loads((repo / "acme.json").read_text())["accounts"] == ["acme"]
    # A live change in another account does not make acme's plan stale.
    assert run("events", "disable", "globex/contact-sales").exit_code == 0
    refused = run("apply", "acme.json", "--account", "globex")
    assert refused.exit_code == 1 and "keeps the --account scope" in refused.output
    res = run("apply", "acme.json")
    assert res.exit_code == 0, res.output
    after = live()
    assert "globex/pipeline" in after and "globex/pipeline2" not in after  # not in its scope
    assert after["globex/contact-sales"]["enabled"] is False
    # A live change inside the scope still does.
    assert run("plan", "--account", "acme", "--out", "acme.json").exit_code == 0
    assert run("events", "disable", "acme/funnel").exit_code == 0
    stale = run("apply", "acme.json")
    assert stale.exit_code == 1 and "stale" in stale.output


def test_validate_with_account_checks_only_that_account(repo: Path) -> None:
    edit(repo / "manifests/globex/events.yaml", "account: globex", "account: globex-nope")
    assert run("validate").exit_code == 1
    res = run("validate", "--account", "acme")
    assert res.exit_code == 0, res.output
    assert "globex" not in res.output
