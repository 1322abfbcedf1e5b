"""render.redact: credential- and PII-named keys and Meta-token-shaped strings are masked."""

from __future__ import annotations

import pytest

from reconciler.core.plan import Action, Change, FieldDiff, Plan, PlanMessage
from reconciler.render.redact import (
    MASK,
    is_sensitive_key,
    mask_tokens,
    redact,
    redact_change,
    redact_plan,
)

TOKEN = "EAA" + "Bc1" * 10


@pytest.mark.parametrize("key", ["accessToken", "token", "clientSecret", "password", "API_KEY",
                                 "spec.facebook.accessToken", "email", "first_name",
                                 "Authorization"])
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", ["pixelId", "adAccount", "properties", "consent", "labels.team",
                                 "leadIdProperty", "tokenless.path.name"])
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_mask_tokens() -> None:
    assert mask_tokens(f"a {TOKEN} b {TOKEN}") == f"a {MASK} b {MASK}"
    assert mask_tokens("EAA-short EAAabc") == "EAA-short EAAabc"


def test_redact_values() -> None:
    data = {"facebook": {"accessToken": "plain", "ref": {"env": "X"}, "pixelId": "1"},
            "token": {"file": "/run/secrets/t"}, "password": ["a", "b"], "n": 3,
            "note": f"x{TOKEN}", "enabled": True, "email": None}
    assert redact(data) == {
        "facebook": {"accessToken": MASK, "ref": {"env": "X"}, "pixelId": "1"},
        "token": {"file": "/run/secrets/t"}, "password": [MASK, MASK], "n": 3,
        "note": f"x{MASK}", "enabled": True, "email": None}
    assert data["facebook"]["accessToken"] == "plain"  # not mutated


def test_redact_change_and_plan() -> None:
    change = Change("event", "acme", "e", Action.UPDATE, reason=TOKEN,
                    diffs=(FieldDiff("spec.facebook.accessToken", "old", "new"),),
                    before={"secret": "s"}, after={"secret": {"env": "S"}})
    red = redact_change(change)
    assert red.diffs[0].before == MASK and red.diffs[0].after == MASK
    assert red.reason == MASK and red.before == {"secret": MASK}
    assert red.after == {"secret": {"env": "S"}}
    plan = redact_plan(Plan(changes=(change,), errors=(PlanMessage("E", TOKEN),)))
    assert plan.errors[0].message == MASK and plan.changes == (red,)
    clean = Plan(changes=(Change("event", "acme", "e", Action.CREATE, after={"a": "b"}),))
    assert redact_plan(clean) == clean
