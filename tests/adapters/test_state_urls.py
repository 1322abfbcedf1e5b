"""``open_provider``: choosing a live-state backend from ``--state`` / ``CONVCTL_STATE``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.adapters.state import DEFAULT_URL, open_provider
from reconciler.adapters.state.memory import MemoryProvider
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.errors import UsageError


@pytest.fixture(autouse=True)
def _no_state_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVCTL_STATE", raising=False)


def test_default_is_the_sqlite_file_under_dot_convctl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    provider = open_provider(None)
    assert isinstance(provider, SqliteProvider)
    assert provider.path == Path(".convctl/state.db")
    provider.close()
    assert (tmp_path / ".convctl" / "state.db").is_file()
    assert DEFAULT_URL == "sqlite:///.convctl/state.db"


def test_environment_variable_is_used_when_no_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path}/env.db")
    provider = open_provider(None)
    provider.close()
    assert (tmp_path / "env.db").is_file()


def test_explicit_url_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCTL_STATE", "bogus://x")
    assert isinstance(open_provider("memory://"), MemoryProvider)


def test_relative_and_absolute_sqlite_paths(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    relative = open_provider("sqlite:///sub/rel.db")
    absolute = open_provider(f"sqlite:///{tmp_path}/abs.db")  # four slashes in total
    assert isinstance(relative, SqliteProvider) and isinstance(absolute, SqliteProvider)
    assert relative.path == Path("sub/rel.db") and absolute.path == tmp_path / "abs.db"
    for provider in (relative, absolute):
        provider.close()
    assert (tmp_path / "sub" / "rel.db").is_file() and (tmp_path / "abs.db").is_file()


def test_memory_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_provider("memory://") is not open_provider("memory://")
    assert open_provider("memory://t-urls") is open_provider("memory://t-urls")


@pytest.mark.parametrize("url", ["http://localhost:8080", "https://convctl.example.com"])
def test_http_needs_a_token(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVCTL_TOKEN", raising=False)
    with pytest.raises(UsageError, match="set CONVCTL_TOKEN to a token with read scope"):
        open_provider(url)


def test_http_urls_open_the_http_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.adapters.state.http import HttpProvider

    monkeypatch.setenv("CONVCTL_TOKEN", "cvt_x")
    provider = open_provider("https://convctl.example.com:8443/")
    assert isinstance(provider, HttpProvider)
    assert provider.base_url == "https://convctl.example.com:8443"
    provider.close()


@pytest.mark.parametrize("url", ["mysql://db/state", "state.db", "sqlite://", "sqlite:///"])
def test_unknown_or_incomplete_urls(url: str) -> None:
    with pytest.raises(UsageError, match="sqlite:///"):
        open_provider(url)


def test_sqlite3_is_imported_only_when_used() -> None:
    code = ("import sys; from reconciler.adapters.state import open_provider; "
            "open_provider('memory://'); print('sqlite3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("url", ["sqlite:///nodir/state.db", "sqlite:///nodir/.convctl/state.db"])
def test_a_missing_state_directory_is_refused_and_nothing_is_created(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 3, bad input: a missing state directory is one clear message, exit 1, no files."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"state directory 'nodir.*' does not exist"):
        open_provider(url)
    assert list(tmp_path.iterdir()) == []
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "plan", "--state", url,
                           str(Path(__file__).parents[2] / "manifests")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []


def test_the_default_dot_convctl_folder_is_still_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_provider("sqlite:///.convctl/state.db").close()
    assert (tmp_path / ".convctl" / "state.db").is_file()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:s3cr%40t@db:5432/convctl", "postgresql://app:***@db:5432/convctl"),
    ("postgres://app:pw@db/convctl?sslmode=require", "postgres://app:***@db/convctl?sslmode=require"),
    ("postgresql://app@db/convctl", "postgresql://app@db/convctl"),
    ("postgresql://db/convctl?user=app&password=pw", "postgresql://db/convctl?user=app&password=***"),
    ("postgresql://:pw@db/convctl", "postgresql://:***@db/convctl"),
    ("sqlite:///.convctl/state.db", "sqlite:///.convctl/state.db"),
])
def test_redact_url_hides_the_password(url: str, shown: str) -> None:
    from reconciler.adapters.state import redact_url

    assert redact_url(url) == shown


def test_an_unsupported_url_is_shown_redacted() -> None:
    with pytest.raises(UsageError) as refused:
        open_provider("mysql://app:hunter2@db/state")
    assert "hunter2" not in str(refused.value) and "mysql://app:***@db/state" in str(refused.value)
