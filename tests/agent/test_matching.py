"""One test per matching reason (R4, R5, R6, R8, R12, R14, R16, R19) and the firing cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from agentkit import (
    CREATED,
    LATER,
    OTHER_FORM,
    account,
    contact,
    form_event,
    lifecycle_event,
    stage_change,
    submission,
)

from reconciler.core.capi import event_id
from reconciler.core.live import LiveEvent
from reconciler.core.matching import Skip, dedup_key, match


def reasons(result_skips: tuple[Skip, ...]) -> list[str]:
    return [s.reason for s in result_skips]


def test_form_fires() -> None:
    live = form_event()
    result = match(submission(), contact(), [live], account())
    assert result.fired and not result.skips
    assert result.fires[0].live_event == live
    assert result.fires[0].dedup_key == event_id("ev-form", "form:sub-1")


def test_stage_change_fires_standard_and_custom() -> None:
    live = lifecycle_event()
    assert match(stage_change("customer"), contact(), [live], account()).fired
    assert match(stage_change("1452450030"), contact(), [live], account()).fired


def test_no_conversion_event() -> None:
    result = match(submission(), contact(), [lifecycle_event()], account())
    assert reasons(result.skips) == ["no_conversion_event"]
    assert result.skips[0].live_event is None and result.skips[0].rule == "R1"
    assert reasons(match(stage_change(), contact(), [], account()).skips) == [
        "no_conversion_event"]


def test_disabled_r19() -> None:
    result = match(submission(), contact(), [form_event(enabled=False)], account())
    assert reasons(result.skips) == ["disabled"] and result.skips[0].rule == "R19"
    result = match(stage_change(), contact(), [lifecycle_event(enabled=False)], account())
    assert reasons(result.skips) == ["disabled"]


@pytest.mark.parametrize("delta", [timedelta(0), -timedelta(seconds=1)])
def test_before_creation_r4(delta: timedelta) -> None:
    early = submission(submitted_at=CREATED + delta)
    assert reasons(match(early, contact(), [form_event()], account()).skips) == [
        "before_creation"]
    change = stage_change(at=CREATED + delta)
    assert reasons(match(change, contact(), [lifecycle_event()], account()).skips) == [
        "before_creation"]


def test_no_lead_id_r5() -> None:
    for lead in (None, "", "12345", "abc4567890123456"):
        result = match(stage_change(), contact(meta_lead_id=lead), [lifecycle_event()],
                       account())
        assert reasons(result.skips) == ["no_lead_id"], lead


def test_stage_not_selected_r6() -> None:
    live = lifecycle_event(stages=["customer"])
    for stage in ("lead", "other", "999"):
        result = match(stage_change(stage), contact(), [live], account())
        assert reasons(result.skips) == ["stage_not_selected"]


def test_no_ad_interaction_r8() -> None:
    live = lifecycle_event(contacts="adInteractions")
    result = match(stage_change(), contact(), [live], account())
    assert reasons(result.skips) == ["no_ad_interaction"]
    assert match(stage_change(), contact(ad_interaction=True), [live], account()).fired
    assert match(stage_change(), contact(fbc="fb.1.1.abc"), [live], account()).fired
    assert match(stage_change(), contact(), [lifecycle_event()], account()).fired


def test_other_form_r12() -> None:
    result = match(submission(form_id=OTHER_FORM), contact(), [form_event()], account())
    assert reasons(result.skips) == ["other_form"]


def test_no_consent_r14() -> None:
    missing = contact(properties={"email": "a@b.c"})
    assert reasons(match(submission(), missing, [form_event()], account()).skips) == [
        "no_consent"]
    wrong = contact(properties={"email": "a@b.c", "fb_consent": "no"})
    assert reasons(match(submission(), wrong, [form_event()], account()).skips) == [
        "no_consent"]


def test_no_contact() -> None:
    assert reasons(match(submission(), None, [form_event()], account()).skips) == [
        "no_contact"]
    assert reasons(match(stage_change(), None, [lifecycle_event()], account()).skips) == [
        "no_contact"]


def test_duplicate_r16_with_set_and_predicate() -> None:
    live = form_event()
    key = dedup_key(live, submission())
    result = match(submission(), contact(), [live], account(), seen={key})
    assert reasons(result.skips) == ["duplicate"]
    result = match(submission(), contact(), [live], account(), seen=lambda k: k == key)
    assert reasons(result.skips) == ["duplicate"]
    other = submission(submission_id="sub-2")
    assert match(other, contact(), [live], account(), seen={key}).fired


def test_mixed_fires_and_skips_report_every_candidate() -> None:
    events = [form_event(id="a"), form_event(id="b", enabled=False),
              form_event(id="c", form_id=OTHER_FORM), lifecycle_event()]
    result = match(submission(), contact(), events, account())
    assert [f.live_event.id for f in result.fires] == ["a"]
    assert [(s.live_event.id if s.live_event else None, s.reason) for s in result.skips] == [
        ("b", "disabled"), ("c", "other_form")]


def test_other_accounts_events_are_not_candidates() -> None:
    foreign = form_event().model_copy(update={"account": "other"})
    assert isinstance(foreign, LiveEvent)
    assert reasons(match(submission(), contact(), [foreign], account()).skips) == [
        "no_conversion_event"]


def test_portal_mismatch_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        match(submission(portal_id=1), contact(), [form_event()], account())


def test_naive_created_at_is_utc() -> None:
    live = form_event(created_at=CREATED.replace(tzinfo=None))
    assert match(submission(submitted_at=LATER), contact(), [live], account()).fired
