"""render.redact: credential- and PII-named keys and token-shaped strings (Meta and cvt_) are
masked; names and messages are escaped onto one line."""

from __future__ import annotations

import pytest

from reconciler.core.plan import Action, Change, FieldDiff, Plan, PlanMessage
from reconciler.core.redaction import looks_like_token
from reconciler.render.redact import (
    MASK,
    is_sensitive_key,
    mask_tokens,
    printable,
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


CVT = "cvt_" + "Q7-vK_2m" * 4


def test_control_plane_tokens_are_masked_too() -> None:
    """Issue 10 item 12: `cvt_` tokens were redacted nowhere."""
    assert mask_tokens(f"Bearer {CVT}.") == f"Bearer {MASK}."
    assert mask_tokens("see cvt_docs and cvt_") == "see cvt_docs and cvt_"
    assert looks_like_token(CVT) and looks_like_token(f"x{TOKEN}")
    assert not looks_like_token("growth") and not looks_like_token("EAA-short")


def test_printable_escapes_control_and_bidi_characters() -> None:
    assert printable("../../etc/x\n\u202e") == "../../etc/x\\n\\u202e"
    assert printable(f"ok é {CVT}") == f"ok é {MASK}"


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_every_renderer_masks_both_tokens_and_escapes_names(fmt: str) -> None:
    from reconciler.render import render

    hostile = "x\n\u202eevil"
    after = {"metadata": {"name": hostile, "labels": {"note": f"{CVT} {TOKEN}"}}}
    plan = Plan(changes=(
        Change("event", "acme", hostile, Action.UPDATE, reason=f"moved {CVT}",
               diffs=(FieldDiff("metadata.labels.note", "a", f"{CVT} {TOKEN}"),
                      FieldDiff("metadata.labels.k\nq", None, "v")),
               before={"metadata": {"name": hostile}}, after=after),))
    out = render(plan, fmt)
    assert CVT not in out and TOKEN not in out and "\u202e" not in out
    assert "x\nevil" not in out and "x\n\u202e" not in out and "k\nq" not in out


def test_error_messages_are_masked_and_one_line() -> None:
    from reconciler.errors import NotFoundError, StateError

    assert str(NotFoundError(f"no live event {CVT}")) == f"no live event {MASK}"
    assert str(StateError("name 'a\nb\u202e'")) == "name 'a\\nb\\u202e'"
