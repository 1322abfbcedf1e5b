"""The machine form of a plan: ``Plan.to_json()`` plus a ``summary`` object, deterministic.

Keys sorted, two-space indent, UTF-8 kept as is, no trailing newline. ``Plan.from_json`` reads
it back (it ignores ``summary``). Values are redacted (``render.redact``) first.
"""

from __future__ import annotations

import json

from reconciler.core.plan import Plan
from reconciler.render.common import summary_counts
from reconciler.render.redact import printable_lines, redact_plan


def render_json(plan: Plan) -> str:
    """``{"format_version", "changes", "quotas", ..., "summary": {create, update, ...}}``."""
    plan = redact_plan(plan)
    data = {**plan.to_json(), "summary": summary_counts(plan)}
    return printable_lines(json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False,
                                     default=str))
