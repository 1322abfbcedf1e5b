"""The pull-request form of a plan: ONE GitHub comment, at most ``limit`` characters.

Layout: the hidden marker ``<!-- convctl-plan -->`` (the sticky-comment key), the summary line as
title, a table per account, errors, policy violations, warnings, advisory policy warnings,
destructive changes (⚠️, bold), drift, unmanaged events, then one ``<details>`` block per change
(destructive first) holding a ```` ```diff ```` fence. The document is a sequence of atomic
blocks; when it is too long, blocks are dropped from the end and a truncation note is appended,
so no fence or ``<details>`` is ever cut.
"""

from __future__ import annotations

import html
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.plan import AccountQuota, Change, Plan
from reconciler.core.policy import Violation
from reconciler.render.common import (
    DRIFT,
    Line,
    accounts,
    change_lines,
    counts,
    drift_paths,
    phrase,
    plural,
    pruned_keys,
    summary_line,
    unmanaged_text,
)
from reconciler.render.redact import printable_lines, redact_plan

MARKER = "<!-- convctl-plan -->"
LIST_CAP = 50  # items per summary list; the details blocks carry the rest
_MD_SPECIAL = re.compile(r"([\\`*_<>|\[\]#])")


@dataclass(frozen=True)
class _Block:
    text: str
    change: bool = False  # a per-change details block (counted by the truncation note)


def _esc(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(text: str) -> str:
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(r) for r in re.findall(r"`+", text)) + 1)
    return f"{fence} {text} {fence}"


def _table(plan: Plan) -> str:
    rows = ["| Account | Create | Update | Replace | Delete | Unmanaged "
            "| Quota (before -> after / limit) | Peak |",
            "|---|--:|--:|--:|--:|--:|---|--:|"]
    changes: dict[str, list[Change]] = defaultdict(list)  # grouped in one pass, not rescanned
    for c in plan.changes:                                # per account (accounts x changes)
        changes[c.account].append(c)
    unmanaged_of = Counter(u.account for u in plan.unmanaged)
    quotas: dict[str, AccountQuota] = {}
    for quota_ in plan.quotas:
        quotas.setdefault(quota_.account, quota_)
    for account in accounts(plan):
        n = counts(changes.get(account, []))
        unmanaged = unmanaged_of[account]
        q = quotas.get(account)
        quota = f"{q.before} -> {q.after} / {q.limit}" if q else "n/a"
        peak = "n/a" if q is None else (f"⚠️ **{q.peak}** (over {q.limit})" if q.exceeded
                                        else str(q.peak))
        rows.append(f"| {_esc(account)} | {n['create']} | {n['update']} | {n['replace']} "
                    f"| {n['delete']} | {unmanaged} | {quota} | {peak} |")
    return "\n".join(rows) + "\n\n"


def _section(title: str, items: list[str]) -> list[_Block]:
    if not items:
        return []
    shown = [_Block(f"- {item}\n") for item in items[:LIST_CAP]]
    more = len(items) - LIST_CAP
    tail = [_Block(f"- … and {more} more\n")] if more > 0 else []
    return [_Block(f"#### {title}\n\n"), *shown, *tail, _Block("\n")]


def _destructive_item(c: Change) -> str:
    reason = f" — {_esc(c.reason)}" if c.reason else ""
    return f"⚠️ **{_code(c.action.symbol)} {_code(c.address)} {_esc(phrase(c))}**{reason}"


def _unmanaged_items(plan: Plan) -> list[str]:
    pruned = pruned_keys(plan)
    return [f"{_code(f'event.{u.account}/{u.name}')} (live id {_code(u.live_id)}): "
            + _esc(unmanaged_text(u.stage_count, (u.account, u.name) in pruned))
            for u in plan.unmanaged]


def _diff_line(line: Line) -> str:
    sym = "!" if line.sym == "~" else line.sym
    return f"{sym} {'  ' * line.depth}{line.text}".rstrip()


def _details(c: Change) -> _Block:
    body = "\n".join(_diff_line(line) for line in change_lines(c))
    runs = re.findall(r"`{3,}", body)
    fence = "`" * max([3, *(len(r) + 1 for r in runs)])
    label = f"<code>{html.escape(c.action.symbol)}</code> {html.escape(c.address)} " \
            f"{html.escape(phrase(c))}"
    if c.drift:
        label += " (changed outside convctl)"
    if c.action.is_destructive:
        label = f"⚠️ <b>{label}</b>"
    text = (f"<details><summary>{label}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n"
            "</details>\n\n")
    return _Block(text, change=True)


def _violation(v: Violation) -> str:
    return f"{_code(v.policy)}: {_esc(v.message)}"


def _blocks(plan: Plan, violations: Sequence[Violation]) -> list[_Block]:
    destructive = [c for c in plan.changes if c.action.is_destructive]
    others = [c for c in plan.changes if not c.action.is_destructive]
    blocks = [_Block(_table(plan))] if accounts(plan) else []
    blocks += _section("❌ Errors", [_esc(e.render()) for e in plan.errors])
    blocks += _section("🚫 Policy violations (apply refuses this plan)",
                       [_violation(v) for v in violations if not v.advisory])
    blocks += _section("Warnings", [_esc(w.render()) for w in plan.warnings])
    blocks += _section("Policy warnings (advisory)",
                       [_violation(v) for v in violations if v.advisory])
    blocks += _section("⚠️ Destructive changes", [_destructive_item(c) for c in destructive])
    blocks += _section("Changed outside convctl (drift; apply restores the manifests)",
                       [f"{_code(c.address)}: {_esc(DRIFT)}: {_code(drift_paths(c))}"
                        for c in plan.changes if c.drift])
    blocks += _section("Unmanaged live events (not in git)", _unmanaged_items(plan))
    details = [_details(c) for c in (*destructive, *others)]
    if details:  # the heading travels with the first block, never alone
        details[0] = _Block("#### Changes\n\n" + details[0].text, change=True)
    return blocks + details


def _note(omitted: int) -> str:
    what = f"{plural(omitted, 'more change')} not shown" if omitted else "output truncated"
    return f"\n… {what}; run `convctl plan` locally for the full plan."


def _fit(head: str, blocks: list[_Block], limit: int) -> str:
    full = (head + "".join(b.text for b in blocks)).rstrip("\n")
    if len(full) <= limit:
        return full
    total = sum(1 for b in blocks if b.change)
    budget = limit - len(head) - len(_note(total))
    kept: list[str] = []
    used = shown = 0
    for block in blocks:
        if used + len(block.text) > budget:
            break
        kept.append(block.text)
        used += len(block.text)
        shown += block.change
    return (head + "".join(kept) + _note(total - shown))[:limit]


def render_markdown(plan: Plan, *, limit: int = 65536,
                    violations: Sequence[Violation] | None = None) -> str:
    """One PR comment, at most ``limit`` characters, never cut inside a fence or details."""
    plan = redact_plan(plan)
    head = f"{MARKER}\n### {summary_line(plan)}\n\n"  # names are [a-z0-9-]
    return printable_lines(_fit(head, _blocks(plan, violations or ()), limit).rstrip("\n"))
