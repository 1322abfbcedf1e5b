"""``convctl state status|migrate|copy`` on both backends (issue 11): the store itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from clikit import shipped_repo

from reconciler.adapters.state import open_provider, open_token_store
from reconciler.cli.main import cli


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return shipped_repo(tmp_path, monkeypatch)


def _url(request: pytest.FixtureRequest, backend: str, name: str) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url" if name == "a" else "postgres_url_b"))
    return f"sqlite:///{name}.db"


@pytest.fixture
def postgres_url_b(postgres_server: object) -> Iterator[str]:
    url, drop = postgres_server.fresh_database()  # type: ignore[attr-defined]
    yield url
    drop()


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, repo: Path) -> str:
    return _url(request, request.param, "a")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _password(url: str) -> str | None:
    return url.split(":")[2].split("@")[0] if url.startswith("postgresql://") else None


def _clean(result: Result, url: str) -> Result:
    secret = _password(url)
    assert secret is None or secret not in result.output
    return result


def test_migrate_then_status_of_an_empty_state(state: str) -> None:
    first = _clean(run("state", "migrate", "--state", state), state)
    assert first.exit_code == 0 and "from schema version 0 to" in first.output, first.output
    again = _clean(run("state", "migrate", "--state", state), state)
    assert again.exit_code == 0 and "nothing to migrate" in again.output
    shown = _clean(run("state", "status", "--state", state), state)
    assert shown.exit_code == 0, shown.output
    backend = "sqlite" if state.startswith("sqlite") else "postgresql"
    for line in (f"backend         {backend}", "accounts        0", "events          0",
                 "active tokens   0", "journal steps   0", "lock            free"):
        assert f"{line}\n" in shown.output
    assert "schema version  " in shown.output and "(up to date)" in shown.output


def test_status_counts_what_the_state_holds_and_names_the_lock(state: str) -> None:
    assert run("apply", "--auto-approve", "--state", state).exit_code == 0
    provider = open_provider(state)
    lock = provider.acquire_lock("alice@laptop", "apply", 600)
    provider.close()
    shown = _clean(run("state", "status", "--state", state), state)
    assert shown.exit_code == 0, shown.output
    assert "accounts        2\n" in shown.output and "events          7\n" in shown.output
    assert f"lock {lock.id} held by alice@laptop" in shown.output


def test_status_as_json_for_machines(state: str) -> None:
    assert run("apply", "--auto-approve", "--state", state).exit_code == 0
    shown = _clean(run("state", "status", "--format", "json", "--state", state), state)
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["format_version"] == "1" and doc["up_to_date"] is True and doc["lock"] is None
    assert doc["backend"] == ("sqlite" if state.startswith("sqlite") else "postgresql")
    assert doc["counts"]["accounts"] == 2 and doc["counts"]["events"] == 7


def test_status_names_an_account_lock(state: str) -> None:
    """Issue 14 item 2: an apply holding only an account's lock is not shown as 'free'."""
    assert run("apply", "--auto-approve", "--state", state).exit_code == 0
    provider = open_provider(state)
    lock = provider.acquire_lock("bob@ci", "apply", 600, accounts=["acme"])
    provider.close()
    shown = _clean(run("state", "status", "--state", state), state)
    assert shown.exit_code == 0, shown.output
    assert f"lock {lock.id} held by bob@ci" in shown.output and "of account acme" in shown.output


def test_status_of_a_missing_sqlite_file_creates_nothing(repo: Path) -> None:
    shown = run("state", "status", "--state", "sqlite:///nothing.db")
    assert shown.exit_code == 1 and "no state file at nothing.db" in shown.output
    assert not (repo / "nothing.db").exists()


@pytest.mark.parametrize(("source", "target"), [("sqlite", "postgres"), ("postgres", "sqlite"),
                                                ("sqlite", "sqlite")])
def test_copy_moves_everything_and_a_plan_on_the_target_shows_no_changes(
        request: pytest.FixtureRequest, repo: Path, source: str, target: str) -> None:
    src, dst = _url(request, source, "a"), _url(request, target, "b")
    assert run("apply", "--auto-approve", "--state", src).exit_code == 0
    assert run("events", "disable", "acme/funnel", "--state", src).exit_code == 0  # drift kept
    secret = run("token", "create", "--scope", "read", "--name", "ci", "--state", src).output
    copied = _clean(_clean(run("state", "copy", src, dst), src), dst)
    assert copied.exit_code == 0, copied.output
    assert "accounts       2\n" in copied.output and "events         7\n" in copied.output
    assert "tokens         1\n" in copied.output
    before, after = open_provider(src), open_provider(dst)
    assert after.list_events() == before.list_events()  # same ids, versions, times, drift
    assert after.list_accounts() == before.list_accounts() and after.current_lock() is None
    history = before.audit_log()
    assert history and after.audit_log() == history  # who applied what, kept (issue 14)
    assert f"audit records  {len(history)}\n" in copied.output
    before.close()
    after.close()
    tokens = open_token_store(dst)
    assert tokens.verify(secret.strip().splitlines()[0]) is not None
    tokens.close()
    plan = run("plan", "--detailed-exitcode", "--state", dst)
    assert plan.exit_code == 2 and "changed outside convctl" in plan.output  # the same drift
    assert run("apply", "--auto-approve", "--state", src).exit_code == 0


def test_copy_refuses_a_non_empty_target_and_changes_nothing(
        request: pytest.FixtureRequest, repo: Path) -> None:
    src, dst = _url(request, "sqlite", "a"), _url(request, "postgres", "b")
    assert run("apply", "--auto-approve", "--state", src).exit_code == 0
    provider = open_provider(dst)
    provider.record_step("run-1", 0, "create acme/x", "done")
    provider.close()
    refused = _clean(run("state", "copy", src, dst), dst)
    assert refused.exit_code == 1 and "is not empty (1 journal steps)" in refused.output
    provider = open_provider(dst)
    assert provider.list_events() == [] and provider.current_lock() is None
    provider.close()
    source = open_provider(src)
    assert source.current_lock() is None  # the source's lock was never left behind
    source.close()


def test_copy_refuses_a_locked_source(request: pytest.FixtureRequest, repo: Path) -> None:
    src, dst = _url(request, "postgres", "a"), _url(request, "sqlite", "b")
    provider = open_provider(src)
    provider.acquire_lock("bob@ci", "apply", 600)
    provider.close()
    refused = _clean(run("state", "copy", src, dst), src)
    assert refused.exit_code == 1 and "bob@ci" in refused.output
    assert not (repo / "b.db").exists()
