"""Robustness: schemathesis drives every operation of the OpenAPI (a bounded number of cases,
in process over ASGI): no 5xx, responses match the documented schemas and content types.
Plus: an unexpected exception is a 500 JSON without internals."""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient
from statekit import account_spec, form_event, lifecycle_event

from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.state.sqlite import SqliteProvider
from reconciler.adapters.state.tokens import SqliteTokenStore
from reconciler.server.app import create_app
from reconciler.server.ingest import WebhookSettings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _seeded_app(root: Path) -> tuple[Any, str]:
    provider = SqliteProvider(root / "state.db")
    tokens = SqliteTokenStore(root / "state.db")
    _, secret = tokens.create(["admin"], "fuzz")
    provider.put_account("acme", account_spec(), {}, None)
    provider.create_event(form_event("demo"))
    provider.create_event(lifecycle_event("funnel", 3))
    inbox = AgentStore(root / "state.db")
    webhooks = WebhookSettings(client_secret="fuzz-secret")
    return create_app(provider, tokens, inbox=inbox, webhooks=webhooks), secret


# Built at import (schemathesis parametrizes at collection time): a seeded SQLite state in a
# temp directory, removed at exit.
_ROOT = tempfile.TemporaryDirectory(prefix="convctl-fuzz-")
atexit.register(_ROOT.cleanup)
APP, TOKEN = _seeded_app(Path(_ROOT.name))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


class Exploding:
    def __getattr__(self, name: str) -> object:
        def fail(*args: object, **kwargs: object) -> None:
            raise RuntimeError("secret internals /etc/passwd")
        return fail


def test_unexpected_exception_is_a_500_json_without_internals(tmp_path: Path) -> None:
    tokens = SqliteTokenStore(tmp_path / "state.db")
    _, secret = tokens.create(["admin"], "x")
    app = create_app(Exploding(), tokens)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/accounts", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error",
                                         "message": "internal error; see the server log"}}
    assert "secret internals" not in response.text
    assert isinstance(response, httpx.Response)
