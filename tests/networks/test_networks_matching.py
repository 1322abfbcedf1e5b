"""Matching calls the event's network's own rules after the shared ones (issue 16 item 5): a
LinkedIn lifecycle event needs no Meta lead id (R5 is Meta's) but an identifier LinkedIn can
match on (``no_user_id``, R15); the shared rules still come first."""

from __future__ import annotations

from linkedinkit import account_spec, contact, lifecycle_event, stage_change

from reconciler.core.live import LiveAccount
from reconciler.core.matching import Matcher


def _account() -> LiveAccount:
    return LiveAccount(name="acme", spec=account_spec(), updated_at=stage_change().occurred_at)


def test_linkedin_needs_no_lead_id_but_a_user_id() -> None:
    matcher = Matcher([lifecycle_event()], _account())
    fired = matcher.match(stage_change(), contact())  # no Meta lead id: fires for LinkedIn
    assert [f.live_event.id for f in fired.fires] == ["li-funnel"] and not fired.skips
    skipped = matcher.match(stage_change(), contact(email=None, li_fat_id=None))
    assert [(s.reason, s.rule) for s in skipped.skips] == [("no_user_id", "R15")]


def test_the_shared_rules_come_before_the_networks() -> None:
    matcher = Matcher([lifecycle_event()], _account())
    result = matcher.match(stage_change("opportunity"), contact(email=None, li_fat_id=None))
    assert [s.reason for s in result.skips] == ["stage_not_selected"]
    assert [s.reason for s in matcher.match(stage_change(), None).skips] == ["no_contact"]
