"""A throwaway PostgreSQL server in a temporary folder (the tests' ``pgkit``, the benchmarks).

``start_server(bindir)`` runs ``initdb`` and ``pg_ctl start``: loopback only, a free port, the
socket in that folder. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user when there is one, else as ``nobody``. Clients connect over TCP as a
password-protected role; ``fresh_database()`` makes one database per test or run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROLE = "convctl_test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        login = quote(self.user, safe="") + (f":{quote(self.password, safe='')}"
                                             if self.password else "")
        return f"postgresql://{login}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def fresh_database(self) -> tuple[str, Callable[[], None]]:
        """A new empty database (its URL) and the function that drops it."""
        name = "t_" + secrets.token_hex(6)
        owner = f' OWNER "{self.user}"' if self.user else ""
        self.admin(f'CREATE DATABASE "{name}"{owner} TEMPLATE template0')
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
    raise RuntimeError("running as root and there is no postgres or nobody user to run "
                       "PostgreSQL as")


def _run(cmd: list[str], user: str | None) -> None:
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    done = subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")


def start_server(bindir: Path, *, durable: bool = False) -> PgServer:
    """initdb + pg_ctl start in a temporary folder (removed by ``stop``); ``durable`` keeps
    PostgreSQL's fsync and synchronous commits on (benchmarks), tests turn them off."""
    user = _run_as()
    # /tmp, not $TMPDIR, when the server runs as another user: it must reach the folder
    folder = Path(tempfile.mkdtemp(prefix="convctl-pg-", dir="/tmp" if user else None))
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
                       f"unix_socket_directories = '{folder}'\nmax_connections = 300\n")
            if not durable:
                conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                           "shared_buffers = 32MB\n")
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
