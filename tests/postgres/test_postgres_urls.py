"""The PostgreSQL state URL (issue 11): libpq conventions, lazy import, the password never shown,
and bad input (unreachable, wrong password, missing database, newer schema): one line naming the
URL with its password redacted and what to do, exit 1, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from serverkit import convctl, free_port

from reconciler.adapters.state import open_provider, redact_url
from reconciler.adapters.state.postgres import PostgresProvider
from reconciler.errors import StateError

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = str(ROOT / "manifests")


def _parts(url: str) -> tuple[str, str]:
    """(the URL without its password, the password)."""
    parts = urlsplit(url)
    user, password = parts.netloc.split("@")[0].split(":")
    bare = urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.split('@')[1]}"))
    return bare, password


def _tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        return int(row.fetchone()[0])  # type: ignore[index]


def _one_line_error(proc: subprocess.CompletedProcess[str], *secrets: str) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    return proc.stderr


def test_both_schemes_and_the_environment_variable(postgres_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    provider = open_provider(postgres_url.replace("postgresql://", "postgres://", 1))
    assert isinstance(provider, PostgresProvider) and provider.list_events() == []
    provider.close()
    monkeypatch.setenv("CONVCTL_STATE", postgres_url)
    from_env = open_provider(None)
    assert isinstance(from_env, PostgresProvider) and from_env.list_accounts() == []
    from_env.close()


def test_pgpassword_and_pgpass_supply_the_password(postgres_url: str, tmp_path: Path) -> None:
    bare, password = _parts(postgres_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    by_env = convctl("plan", "--state", bare, MANIFESTS, env={**env, "PGPASSWORD": password})
    assert by_env.returncode == 0, by_env.stderr
    pgpass = tmp_path / ".pgpass"
    host, port = urlsplit(postgres_url).hostname, urlsplit(postgres_url).port
    pgpass.write_text(f"{host}:{port}:*:{urlsplit(postgres_url).username}:{password}\n")
    pgpass.chmod(0o600)
    by_file = subprocess.run(
        [sys.executable, "-m", "reconciler.cli.main", "plan", "--state", bare, MANIFESTS],
        capture_output=True, text=True, env={**env, "HOME": str(tmp_path), "NO_COLOR": "1"},
        check=False, timeout=60)
    assert by_file.returncode == 0, by_file.stderr
    assert "Plan: 7 to create" in by_file.stdout


def test_sqlite_runs_never_import_psycopg(tmp_path: Path) -> None:
    code = ("import sys; from click.testing import CliRunner; from reconciler.cli.main import cli; "
            f"r = CliRunner().invoke(cli, ['plan', '--state', 'sqlite:///{tmp_path}/s.db', "
            f"'{MANIFESTS}']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.startswith('psycopg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_password_never_appears_in_output(postgres_url: str, tmp_path: Path) -> None:
    _, password = _parts(postgres_url)
    for args in (["plan"], ["apply", "--auto-approve"], ["events", "list"],
                 ["token", "create", "--scope", "read", "--name", "ci"], ["token", "list"],
                 ["unlock", "nope"], ["plan", "--format", "json"]):
        proc = convctl(*args, "--state", postgres_url,
                       *({"plan": [MANIFESTS], "apply": ["--path", MANIFESTS]}.get(args[0], [])),
                       cwd=tmp_path)
        assert password not in proc.stdout + proc.stderr, args
        assert proc.returncode == (1 if args[0] == "unlock" else 0), proc.stderr
    wrong = postgres_url.replace(password, "not-" + password)
    proc = convctl("plan", "--state", wrong, MANIFESTS)
    assert password not in proc.stderr and "not-" + password not in proc.stderr


def test_wrong_password(postgres_url: str) -> None:
    _, password = _parts(postgres_url)
    wrong = postgres_url.replace(password, "wrong-" + password)
    err = _one_line_error(convctl("apply", "--auto-approve", "--state", wrong, "--path", MANIFESTS),
                          password, "wrong-" + password)
    assert redact_url(wrong) in err and "password authentication failed" in err
    assert "PGPASSWORD" in err
    assert _tables(postgres_url) == 0


def test_missing_database(postgres_url: str) -> None:
    _, password = _parts(postgres_url)
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    err = _one_line_error(convctl("plan", "--state", missing, MANIFESTS), password)
    assert redact_url(missing) in err and 'database "no_such_db" does not exist' in err
    assert "createdb" in err


def test_unreachable_server() -> None:
    url = f"postgresql://app:hunter2@127.0.0.1:{free_port()}/convctl"
    err = _one_line_error(convctl("plan", "--state", url, MANIFESTS), "hunter2")
    assert "postgresql://app:***@127.0.0.1" in err and "start PostgreSQL" in err


def test_malformed_url_is_a_usage_error() -> None:
    err = _one_line_error(convctl("plan", "--state", "postgresql://app:pw@db/x?bogus=1",
                                  MANIFESTS), ":pw@")
    assert "not a valid PostgreSQL URL" in err


def test_a_newer_schema_is_refused_and_left_alone(postgres_url: str) -> None:
    PostgresProvider(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO convctl_schema (version, description) VALUES (99, 'future')")
    err = _one_line_error(convctl("apply", "--auto-approve", "--state", postgres_url,
                                  "--path", MANIFESTS), _parts(postgres_url)[1])
    assert "schema version 99" in err and "upgrade convctl" in err
    with pytest.raises(StateError, match="schema version 99"):
        PostgresProvider(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
