"""The control plane enforces the manifest rules and strict types, and never serves a token
(issue 10 items 9, 12, 13), against a real ``convctl serve``.

- a write ``convctl validate`` would refuse is ``422 {"error": {"code": "E304", "rule": "R6",
  "message": ...}}``, with validate's code, and changes nothing;
- a body with a coerced type (``"60"``, ``true`` for a number) is ``422 validation_error``;
- a token stored behind the API's back (before the rules existed) is masked in every answer,
  in ``convctl events show|list`` and in error messages; hostile names print on one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from serverkit import Server, convctl
from statekit import account_spec, form_event

ACCOUNT = "rules"
META_TOKEN = "EAAG" + "x1Y2z3" * 6
CVT_TOKEN = "cvt_" + "Q7-vK_2m" * 4


def _body(**spec: Any) -> dict[str, Any]:
    return form_event("demo", account=ACCOUNT, **spec).model_dump(
        mode="json", by_alias=True, exclude={"account"})


def _stages(*stages: str) -> dict[str, Any]:
    body = _body()
    body["spec"]["trigger"] = {"lifecycleStageChange": {"stages": list(stages)}}
    return body


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("write") as client:
        spec = account_spec().model_dump(mode="json", by_alias=True)
        assert client.put(f"/v1/accounts/{ACCOUNT}", json={"spec": spec}).status_code == 201
        yield client


@pytest.fixture
def unchanged(admin: httpx.Client) -> Iterator[None]:
    before = (admin.get("/v1/accounts").json(), admin.get("/v1/events").json())
    yield
    assert (admin.get("/v1/accounts").json(), admin.get("/v1/events").json()) == before


def _refusal(response: httpx.Response, code: str, rule: str | None) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("rule")) == (code, rule)
    message = str(error["message"])
    assert message and "\n" not in message and "\u202e" not in message
    return message


def _create(admin: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return admin.post(f"/v1/accounts/{ACCOUNT}/events", json=body)


# -- item 9: the rules ---------------------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
def test_stage_other_is_422_e304_r6(admin: httpx.Client) -> None:
    response = _create(admin, _stages("lead", "other"))
    assert response.json() == {"error": {
        "code": "E304", "rule": "R6",
        "message": f"event {ACCOUNT}/demo: the lifecycle stage 'other' is not supported"}}


@pytest.mark.usefixtures("unchanged")
def test_unknown_stage_is_422_e305(admin: httpx.Client) -> None:
    assert "unknown lifecycle stage 'stage-9'" in _refusal(
        _create(admin, _stages("stage-9")), "E305", "R6")


@pytest.mark.usefixtures("unchanged")
def test_four_spellings_of_lead_are_refused_not_four_slots(admin: httpx.Client) -> None:
    message = _refusal(_create(admin, _stages("lead", "lead ", "Lead", "LEAD")), "E305", "R6")
    assert "(and 2 more)" in message


@pytest.mark.usefixtures("unchanged")
def test_ad_account_not_the_accounts_is_422_e202_r1(admin: httpx.Client) -> None:
    _refusal(_create(admin, _body(adAccount="act_999")), "E202", "R1")


@pytest.mark.usefixtures("unchanged")
def test_hostile_name_is_422_e106_on_one_line(admin: httpx.Client) -> None:
    body = {**_body(), "name": "../../etc/x\n\u202e"}
    assert "\\n\\u202e" in _refusal(_create(admin, body), "E106", None)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("token", [META_TOKEN, CVT_TOKEN])
def test_token_in_a_label_is_422_e104_and_not_echoed(admin: httpx.Client, token: str) -> None:
    response = _create(admin, {**_body(), "labels": {"note": token}})
    _refusal(response, "E104", None)
    assert token not in response.text


@pytest.mark.usefixtures("unchanged")
def test_patch_is_checked_too(admin: httpx.Client) -> None:
    created = _create(admin, _body() | {"name": "patched"})
    assert created.status_code == 201, created.text
    event = created.json()
    body = {k: event[k] for k in ("account", "name", "spec", "labels", "api", "managed_by",
                                  "last_applied_hash")}
    body["spec"]["adAccount"] = "act_999"
    response = admin.patch(f"/v1/events/{event['id']}", json=body,
                           headers={"If-Match": str(event["version"])})
    _refusal(response, "E202", "R1")
    assert admin.delete(f"/v1/events/{event['id']}").status_code == 204


@pytest.mark.usefixtures("unchanged")
def test_account_that_would_not_validate_is_422(admin: httpx.Client) -> None:
    spec = account_spec().model_dump(mode="json", by_alias=True)
    spec["facebook"]["pixelId"] = "42"
    _refusal(admin.put("/v1/accounts/other", json={"spec": spec}), "E111", "R3")
    good = account_spec().model_dump(mode="json", by_alias=True)
    _refusal(admin.put("/v1/accounts/Other%0A", json={"spec": good}), "E106", None)


# -- item 13: strict types -----------------------------------------------------------------

@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("ttl", ["60", True, None, "inf"])
def test_lock_ttl_must_be_a_number(admin: httpx.Client, ttl: Any) -> None:
    response = admin.post("/v1/locks", json={"holder": "ci", "operation": "apply",
                                             "ttl_seconds": ttl})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert "ttl_seconds" in response.json()["error"]["message"]
    assert admin.get("/v1/locks").json() == []


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("path", "value"), [
    (("spec", "enabled"), "true"),
    (("spec", "enabled"), 1),
    (("spec", "trigger", "formSubmission", "value", "amount"), "40"),
    (("spec", "trigger", "formSubmission", "facebookEvent"), 1),
    (("labels",), {"team": 1}),
    (("name",), 7),
])
def test_event_bodies_are_strict(admin: httpx.Client, path: tuple[str, ...], value: Any) -> None:
    body = _body()
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    response = _create(admin, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("field", "value"), [("portalId", "4412345"), ("portalId", True),
                                              ("leadSync", "yes"), ("tier", 1)])
def test_account_bodies_are_strict(admin: httpx.Client, field: str, value: Any) -> None:
    spec = account_spec().model_dump(mode="json", by_alias=True) | {field: value}
    response = admin.put("/v1/accounts/strict", json={"spec": spec})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


# -- item 12: tokens never leave -----------------------------------------------------------

@pytest.fixture(scope="module")
def leaky(server: Server, admin: httpx.Client) -> dict[str, Any]:
    """An event whose labels and name were written behind the API's back (an older state)."""
    created = _create(admin, _body() | {"name": "leaky"})
    assert created.status_code == 201, created.text
    event = created.json()
    path = server.state_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET labels = ?, name = ? WHERE id = ?",
                   (orjson.dumps({"meta": META_TOKEN, "cvt": f"Bearer {CVT_TOKEN}"}).decode(),
                    "leaky\n\u202eevil", event["id"]))
    return dict(event)


def test_api_masks_tokens_in_every_answer(admin: httpx.Client, leaky: dict[str, Any]) -> None:
    for response in (admin.get("/v1/events"), admin.get(f"/v1/events/{leaky['id']}"),
                     admin.get(f"/v1/accounts/{ACCOUNT}/events")):
        assert response.status_code == 200
        assert META_TOKEN not in response.text and CVT_TOKEN not in response.text
        assert "***redacted***" in response.text


def test_error_messages_mask_tokens(admin: httpx.Client) -> None:
    response = admin.get(f"/v1/events/{CVT_TOKEN}")
    assert response.status_code == 404
    assert CVT_TOKEN not in response.text and "***redacted***" in response.json()["error"][
        "message"]


def test_events_show_and_list_mask_tokens_and_escape_names(server: Server,
                                                           leaky: dict[str, Any]) -> None:
    env = {"CONVCTL_TOKEN": server.tokens["read"]}
    for state in (server.url, server.state_url):
        shown = convctl("events", "show", leaky["id"], "--state", state, env=env)
        assert shown.returncode == 0, shown.stderr
        listed = convctl("events", "list", "--state", state, env=env)
        assert listed.returncode == 0, listed.stderr
        for out in (shown.stdout, listed.stdout):
            assert META_TOKEN not in out and CVT_TOKEN not in out
            assert "\u202e" not in out
        assert "leaky\\n\\u202eevil" in listed.stdout
        assert orjson.loads(shown.stdout)["labels"]["meta"] == "***redacted***"


def test_plan_prints_a_hostile_live_name_escaped(server: Server, leaky: dict[str, Any],
                                                 tmp_path: Any) -> None:
    """Issue 10 item 9: plan printed a stored name's raw newline and RTL override."""
    account = {"apiVersion": "convctl/v1", "kind": "Account", "metadata": {"name": ACCOUNT},
               "spec": account_spec().model_dump(mode="json", by_alias=True)}
    (tmp_path / "account.yaml").write_bytes(orjson.dumps(account))
    env = {"CONVCTL_TOKEN": server.tokens["read"]}
    for fmt in ("text", "markdown", "json"):
        done = convctl("plan", str(tmp_path), "--state", server.url, "--format", fmt,
                       env=env)
        assert done.returncode in (0, 1, 2), done.stderr
        out = done.stdout + done.stderr
        assert "leaky" in out, out
        assert "\u202e" not in out and "leaky\nevil" not in out and "leaky\n\u202e" not in out
        assert META_TOKEN not in out and CVT_TOKEN not in out
