"""Plan -> text / json / markdown. Pure functions returning ``str``; imports the core only.

``render(plan, "text"|"json"|"markdown", color=...)`` picks one; every format redacts first
(``render.redact``) and ends with the summary line (``render.common.summary_line``) or, for json,
carries it as ``summary.line``.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.plan import Plan
from reconciler.core.policy import Violation
from reconciler.render.common import summary_line
from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.redact import mask_tokens, redact, redact_plan
from reconciler.render.text import render_text

FORMATS = ("text", "json", "markdown")


def render(plan: Plan, fmt: str, *, color: bool = False,
           violations: Sequence[Violation] | None = None) -> str:
    """Dispatch on ``fmt`` (one of ``FORMATS``); colour only applies to text. ``violations``
    is ``None`` when no policies were checked (the output is then exactly as before)."""
    if fmt == "text":
        return render_text(plan, color=color, violations=violations)
    if fmt == "json":
        return render_json(plan, violations)
    if fmt == "markdown":
        return render_markdown(plan, violations=violations)
    raise ValueError(f"unknown plan format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "mask_tokens", "redact", "redact_plan", "render", "render_json",
           "render_markdown", "render_text", "summary_line"]
