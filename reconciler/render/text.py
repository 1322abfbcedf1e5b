"""The terminal form of a plan, drawn the way Terraform users read one.

Per account a header with its quota; per change a ``# ADDRESS PHRASE`` comment, notes (reason,
R4 warning on replace, quota delta, drift), the symbol line and its attributes; then the
unmanaged live events, warnings, errors and the summary line (``common.summary_line``).
Colour is plain ANSI escapes, only with ``color=True``: green ``+``, yellow ``~``, red ``-``,
magenta ``-/+`` and ``+/-``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler.core.plan import AccountQuota, Change, Plan, Unmanaged
from reconciler.core.policy import Violation
from reconciler.render.common import (
    Line,
    accounts,
    change_lines,
    pruned_keys,
    summary_line,
    unmanaged_text,
)
from reconciler.render.redact import printable_lines, redact_plan

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
COLORS = {"+": "\x1b[32m", "~": "\x1b[33m", "-": "\x1b[31m", "-/+": "\x1b[35m",
          "+/-": "\x1b[35m", "error": "\x1b[1;31m", "warning": "\x1b[1;33m", "bold": BOLD}

Paint = Callable[[str, str], str]


def _painter(color: bool) -> Paint:
    def paint(key: str, text: str) -> str:
        code = COLORS.get(key)
        return f"{code}{text}{RESET}" if color and code else text

    return paint


def _line(line: Line, paint: Paint) -> str:
    indent = "  " + "    " * line.depth
    return f"{indent}{paint(line.sym, line.sym)} {line.text}"


def _account_header(account: str, quota: AccountQuota | None, paint: Paint) -> str:
    head = f"Account {account}"
    if quota is not None:
        head += (f" ({quota.tier}): quota {quota.before} -> {quota.after} of {quota.limit}"
                 f" (peak {quota.peak})")
        if quota.exceeded:
            head += " -- over the limit"
    return paint("bold", head)


@dataclass
class _Section:
    """What the plan says about one account (grouped once: rendering stays linear)."""

    changes: list[Change] = field(default_factory=list)
    unmanaged: list[Unmanaged] = field(default_factory=list)
    quota: AccountQuota | None = None


def _sections(plan: Plan) -> dict[str, _Section]:
    sections: defaultdict[str, _Section] = defaultdict(_Section)
    for change in plan.changes:
        sections[change.account].changes.append(change)
    for u in plan.unmanaged:
        sections[u.account].unmanaged.append(u)
    for quota in plan.quotas:
        sections[quota.account].quota = sections[quota.account].quota or quota
    return sections


def _account_section(account: str, section: _Section, pruned: set[tuple[str, str]],
                     paint: Paint) -> list[str]:
    if not section.changes and not section.unmanaged:
        return []
    out = [_account_header(account, section.quota, paint), ""]
    for change in section.changes:
        out.extend(_line(line, paint) for line in change_lines(change))
        out.append("")
    for u in section.unmanaged:
        text = unmanaged_text(u.stage_count, (u.account, u.name) in pruned)
        out.append(f"  ? event.{u.account}/{u.name} (live id {u.live_id}): {text}")
    if section.unmanaged:
        out.append("")
    return out


def _messages(plan: Plan, paint: Paint, violations: Sequence[Violation]) -> list[str]:
    out = [f"{paint('warning', 'Warning:')} {w.render()}" for w in plan.warnings]
    out += [f"{paint('warning', 'Warning:')} policy {v.render()} (advisory)"
            for v in violations if v.advisory]
    out += [f"{paint('error', 'Error:')} {e.render()}" for e in plan.errors]
    out += [f"{paint('error', 'Error:')} policy {v.render()}"
            for v in violations if not v.advisory]
    return [*out, ""] if out else []


def render_text(plan: Plan, *, color: bool = False,
                violations: Sequence[Violation] | None = None) -> str:
    """The plan for a terminal; its last line is the summary line (no trailing newline).
    Policy violations (when policies were checked) are listed with the warnings and errors."""
    plan = redact_plan(plan)
    paint = _painter(color)
    out: list[str] = []
    if not plan.is_empty:
        out += ["convctl will perform the following actions:", ""]
    sections, pruned = _sections(plan), pruned_keys(plan)
    for account in accounts(plan):
        out += _account_section(account, sections[account], pruned, paint)
    out += _messages(plan, paint, violations or ())
    out.append(paint("bold", summary_line(plan)))
    return printable_lines("\n".join(out))
