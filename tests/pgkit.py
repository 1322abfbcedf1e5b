"""A throwaway PostgreSQL server for the tests, and a fresh database for each test.

``CONVCTL_TEST_POSTGRES_URL`` (a role that may ``CREATE DATABASE``) names a server to use;
otherwise, when PostgreSQL's binaries are on the machine (``initdb`` on ``PATH`` or under
``/usr/lib/postgresql/*/bin``), each test session (each pytest-xdist worker) starts its own
throwaway server (``pgserver``; no fsync). Tests connect over TCP as a password-protected role,
so every PostgreSQL test also exercises password handling and redaction.

With neither, the PostgreSQL tests skip, saying how to enable them; under CI (``CI=true``) or
with ``CONVCTL_REQUIRE_POSTGRES=1`` they fail instead.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from pgserver import PgServer, find_bindir, server_from_env, start_server

URL_ENV = "CONVCTL_TEST_POSTGRES_URL"
REQUIRE_ENV = "CONVCTL_REQUIRE_POSTGRES"
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
    try:
        return start_server(bindir)
    except RuntimeError as exc:
        unavailable(str(exc))
