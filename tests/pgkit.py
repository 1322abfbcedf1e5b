"""A throwaway PostgreSQL server for the tests, and a fresh database for each test.

``CONVCTL_TEST_POSTGRES_URL`` (a role that may ``CREATE DATABASE``) names a server to use;
otherwise, when PostgreSQL's binaries are on the machine (``initdb`` on ``PATH`` or under
``/usr/lib/postgresql/*/bin``), each test session (each pytest-xdist worker) starts its own
server in a temporary folder: loopback only, a free port, its socket in that folder, no fsync.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user when there
is one, else as ``nobody``. Tests connect over TCP as a password-protected role, so every
PostgreSQL test also exercises password handling and redaction.

With neither, the PostgreSQL tests skip, saying how to enable them; under CI (``CI=true``) or
with ``CONVCTL_REQUIRE_POSTGRES=1`` they fail instead.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import pytest
from serverkit import free_port

URL_ENV = "CONVCTL_TEST_POSTGRES_URL"
REQUIRE_ENV = "CONVCTL_REQUIRE_POSTGRES"
ROLE = "convctl_test"
HOW = (f"install PostgreSQL (initdb on PATH or /usr/lib/postgresql/*/bin, e.g. apt-get install "
       f"postgresql) or set {URL_ENV}=postgresql://USER:PASSWORD@HOST:PORT/DB")


def required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(REQUIRE_ENV) == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip (fail under CI / ``CONVCTL_REQUIRE_POSTGRES=1``): no PostgreSQL to test against."""
    message = f"PostgreSQL tests need a server: {reason}; {HOW}"
    if required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def find_bindir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


@dataclass
class PgServer:
    """A server and an admin URL to it; ``fresh_database()`` makes one database per test."""

    admin_url: str
    user: str
    password: str
    host: str
    port: int
    stop: Callable[[], None] = lambda: None
    restart: Callable[[], None] | None = None  # only for a server started here

    def url(self, database: str) -> str:
        return (f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{database}")

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def fresh_database(self) -> tuple[str, Callable[[], None]]:
        """A new empty database (its URL) and the function that drops it."""
        name = "t_" + secrets.token_hex(6)
        self.admin(f'CREATE DATABASE "{name}" OWNER "{self.user}" TEMPLATE template0')
        return self.url(name), lambda: self.admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def server_from_env(url: str) -> PgServer:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    return PgServer(admin_url=url, user=str(info.get("user") or os.environ.get("PGUSER", "")),
                    password=str(info.get("password") or os.environ.get("PGPASSWORD", "")),
                    host=str(info.get("host") or "127.0.0.1"), port=int(info.get("port") or 5432))


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    unavailable("running as root and there is no postgres or nobody user to run the server as")


def _run(cmd: list[str], user: str | None) -> None:
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    done = subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")


def start_server(bindir: Path) -> PgServer:
    """initdb + pg_ctl start in a temporary folder (removed by ``stop``)."""
    user = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="convctl-pg-"))
    password = secrets.token_urlsafe(12)
    (folder / "pw").write_text(password)
    if user:
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        for path in (folder, folder / "pw"):
            os.chown(path, uid, gid)
    data = folder / "data"
    _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={folder / 'pw'}",
          "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
          "--no-sync"], user)
    for _attempt in range(3):
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{folder}'\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\n"
                       "max_connections = 300\n")
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                  "-w", "-t", "60", "start"], user)
            break
        except RuntimeError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"PostgreSQL did not start:\n{(folder / 'server.log').read_text()}")

    def stop() -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], user)
        shutil.rmtree(folder, ignore_errors=True)

    def restart() -> None:
        """Stop the server, cutting every connection, and start it again on the same port
        (``fast``: with ``synchronous_commit = off`` an immediate stop could lose the last
        commits, which a real server would keep)."""
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], user)
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
              "-t", "60", "start"], user)

    atexit.register(stop)  # also when the session ends without running its finalizers
    admin_url = f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/postgres"
    server = PgServer(admin_url=admin_url, user=ROLE, password=secrets.token_urlsafe(12),
                      host="127.0.0.1", port=port, stop=stop, restart=restart)
    server.admin(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{server.password}'")
    return server


def session_server() -> PgServer:
    """The server for this test session: from ``CONVCTL_TEST_POSTGRES_URL``, else started."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg package is not installed")
    url = os.environ.get(URL_ENV)
    if url:
        return server_from_env(url)
    bindir = find_bindir()
    if bindir is None:
        unavailable("no initdb found")
    return start_server(bindir)
