"""The machine form of a plan: ``Plan.to_json()`` plus a ``summary`` object, deterministic.

Each event change that sends events also carries ``user_data: {sends, starts, stops}``: the
user_data keys it sends after the change and those it starts or stops sending. A LinkedIn or
Google Ads event change also carries ``network: {name, target}`` (its conversion rule/action).

Keys sorted, two-space indent, UTF-8 kept as is, no trailing newline. ``Plan.from_json`` reads
it back (it ignores ``summary`` and ``policy_violations``). Values are redacted
(``render.redact``) first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.core.plan import Plan
from reconciler.core.policy import Violation
from reconciler.render.common import destination, summary_counts, user_data_change
from reconciler.render.redact import printable_lines, redact_plan


def render_json(plan: Plan, violations: Sequence[Violation] | None = None) -> str:
    """``{"format_version", "changes", "quotas", ..., "summary": {create, update, ...}}``, and
    ``policy_violations`` (``[{policy, message, advisory, file}]``) when policies were checked."""
    plan = redact_plan(plan)
    data = {**plan.to_json(), "summary": summary_counts(plan)}
    for change, out in zip(plan.changes, data["changes"], strict=True):
        sent = user_data_change(change)
        if sent is not None:  # what leaves: the user_data keys the event sends
            out["user_data"] = sent
        dest = destination(change)
        if dest is not None:  # LinkedIn / Google Ads: where it goes (Meta's: unchanged)
            out["network"] = {"name": dest[0], "target": dest[2]}
    if violations is not None:
        data["policy_violations"] = [v.to_json() for v in violations]
    return printable_lines(json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False,
                                     default=str))
