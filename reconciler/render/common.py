r"""What every format shares: counts, the summary line, and a change drawn as symbol lines.

Summary line (one line, always the last of the text format and the title of the markdown one)::

    Plan: C to create, U to update, R to replace, D to delete.[ QUOTAS]
    No changes. Live state matches the manifests.[ QUOTAS]

``QUOTAS`` is one clause ``Quota NAME: BEFORE -> AFTER of LIMIT (peak PEAK)`` per account with
a quota, accounts sorted by name, clauses joined by ``; ``, the whole ending with one ``.`` (so
``Quota (\S+): (\d+) -> (\d+) of (\d+) \(peak (\d+)\)`` finds every clause)::

    Plan: 1 to create, 1 to update, 0 to replace, 1 to delete. Quota acme: 37 -> 41 of 50 (peak 41).
    Plan: 2 to create, ... Quota acme: 37 -> 41 of 50 (peak 41); Quota beta: 0 -> 4 of 100 (peak 4).

Counts are of events (as ``Plan.count``); a rename counts as an update. Account changes, when
there are any, add ``Accounts: N to create, M to update.`` (non-zero categories only) before the
quotas, so the line keeps the exact form above for event-only plans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.core.diff import manifest_view
from reconciler.core.network_rules import LABELS, destination_of, is_hashed, sent_keys_change
from reconciler.core.plan import AccountQuota, Action, Change, FieldDiff, Plan

CATEGORIES = ("create", "update", "replace", "delete")
DRIFT = "changed outside convctl since the last apply"
R4_NOTE = ("replacing resets createdAt: CRM events before the new creation time "
           "will not count (R4)")


@dataclass(frozen=True)
class Line:
    """One drawn line: a symbol (``+ ~ - -/+ +/- #`` or ``?``), its text, a nesting depth."""

    sym: str
    text: str
    depth: int = 0


def category(action: Action) -> str:
    if action.is_replace:
        return "replace"
    return {Action.CREATE: "create", Action.DELETE: "delete"}.get(action, "update")


def counts(changes: tuple[Change, ...] | list[Change]) -> dict[str, int]:
    out = dict.fromkeys(CATEGORIES, 0)
    for c in changes:
        if c.action is not Action.NOOP:
            out[category(c.action)] += 1
    return out


def quota_clause(q: AccountQuota) -> str:
    return f"Quota {q.account}: {q.before} -> {q.after} of {q.limit} (peak {q.peak})"


QUOTA_CLAUSES_MAX = 5


def quota_sentence(plan: Plan) -> str:
    """``Quota a: 1 -> 2 of 50 (peak 2); Quota b: ...`` and a final ``.``; '' without quotas.

    With more than ``QUOTA_CLAUSES_MAX`` accounts only those the plan touches (or that are over
    their limit) get a clause; the rest are counted: ``N other accounts unchanged``.
    """
    quotas = sorted(plan.quotas, key=lambda q: q.account)
    shown = quotas
    if len(quotas) > QUOTA_CLAUSES_MAX:
        touched = {c.account for c in plan.changes} | {u.account for u in plan.unmanaged}
        shown = [q for q in quotas if q.account in touched or q.exceeded or q.before != q.after]
    clauses = [quota_clause(q) for q in shown]
    if len(shown) < len(quotas):
        clauses.append(f"{plural(len(quotas) - len(shown), 'other account')} unchanged")
    return "; ".join(clauses) + "." if clauses else ""


def _events(plan: Plan) -> list[Change]:
    return [c for c in plan.changes if c.kind == "event"]


def _accounts_sentence(plan: Plan) -> str:
    n = counts([c for c in plan.changes if c.kind == "account"])
    parts = [f"{n[k]} to {k}" for k in CATEGORIES if n[k]]
    return f"Accounts: {', '.join(parts)}." if parts else ""


def summary_line(plan: Plan) -> str:
    n = counts(_events(plan))
    if plan.is_empty:
        head = "No changes. Live state matches the manifests."
    else:
        head = ("Plan: " + ", ".join(f"{n[k]} to {k}" for k in CATEGORIES) + ".")
    return " ".join(p for p in (head, _accounts_sentence(plan), quota_sentence(plan)) if p)


def summary_counts(plan: Plan) -> dict[str, Any]:
    """The JSON ``summary`` object: event counts, account changes apart."""
    accounts_n = counts([c for c in plan.changes if c.kind == "account"])
    return {**counts(_events(plan)), "accounts": accounts_n, "total": len(plan.changes),
            "drifted": sum(1 for c in plan.changes if c.drift),
            "unmanaged": len(plan.unmanaged), "errors": len(plan.errors),
            "warnings": len(plan.warnings), "line": summary_line(plan)}


def accounts(plan: Plan) -> list[str]:
    """Every account the plan mentions, sorted."""
    names = {c.account for c in plan.changes} | {u.account for u in plan.unmanaged}
    return sorted(names | {q.account for q in plan.quotas})


def fmt(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of nested dicts as ``(dotted.path, value)``; lists and empty dicts are leaves."""
    if isinstance(value, dict) and value:
        for key in sorted(value, key=str):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, value


def phrase(change: Change) -> str:
    if change.renamed_from and change.action is Action.UPDATE:
        return f"will be renamed from {change.renamed_from}"
    return {"create": "will be created", "update": "will be updated in place",
            "replace": "must be replaced", "delete": "will be destroyed"}[category(change.action)]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if abs(n) == 1 else "s")


def _diff_line(d: FieldDiff, depth: int) -> Line:
    note = "  # forces replacement" if d.forces_replacement else ""
    if d.before is None:
        return Line("+", f"{d.path}: {fmt(d.after)}{note}", depth)
    if d.after is None:
        return Line("-", f"{d.path}: {fmt(d.before)}{note}", depth)
    return Line("~", f"{d.path}: {fmt(d.before)} -> {fmt(d.after)}{note}", depth)


def _related(path: str, diff_paths: list[str]) -> bool:
    return any(path == p or path.startswith(p + ".") or p.startswith(path + ".")
               for p in diff_paths)


def leaves(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """A before/after document's set leaves, with the manifest paths the diffs use."""
    view = manifest_view(document) if {"name", "labels", "spec"} <= document.keys() else document
    return [(p, v) for p, v in flatten(view) if v is not None]


def _hidden(change: Change) -> int:
    """Leaves present before and/or after that no diff touches."""
    if change.before is None or change.after is None:
        return 0
    leaves_ = {p for p, _ in leaves(change.before)} | {p for p, _ in leaves(change.after)}
    paths = [d.path for d in change.diffs]
    return sum(1 for p in leaves_ if not _related(p, paths))


def _attributes(change: Change) -> list[Line]:
    cat = category(change.action)
    if cat == "create" and change.after is not None:
        return [Line("+", f"{p}: {fmt(v)}", 1) for p, v in leaves(change.after)]
    if cat == "delete" and change.before is not None:
        return [Line("-", f"{p}: {fmt(v)}", 1) for p, v in leaves(change.before)]
    lines = [_diff_line(d, 1) for d in change.diffs]
    hidden = _hidden(change)
    if hidden:
        lines.append(Line("#", f"({plural(hidden, 'unchanged attribute')} hidden)", 1))
    return lines


def destination(change: Change) -> tuple[str, str, str | None] | None:
    """``(network, target key, target)`` of a LinkedIn or Google Ads event change; None for
    Meta's (drawn as before networks existed) and for accounts."""
    doc = change.after or change.before
    if change.kind != "event" or doc is None:
        return None
    found = destination_of(doc.get("spec") or {})
    return None if found[0] == "meta" else found


def _notes(change: Change) -> list[Line]:
    lines = []
    dest = destination(change)
    if dest is not None:
        network, key, target = dest
        lines.append(Line("#", f"network: {LABELS[network]}, {key} {target or '-'}"))
    if change.reason:
        lines.append(Line("#", f"reason: {change.reason}"))
    if change.action.is_replace and change.kind == "event" and "(R4)" not in (change.reason or ""):
        lines.append(Line("#", R4_NOTE))
    if change.quota_delta:
        slots = plural(change.quota_delta, "lifecycle-stage slot")
        lines.append(Line("#", f"quota: {'+' if change.quota_delta > 0 else ''}{slots}"))
    if change.drift:
        lines.append(Line("#", f"{DRIFT}: {drift_paths(change)}"))
    return lines + _sends(change)


def user_data_change(change: Change) -> dict[str, list[str]] | None:
    """What an event change sends as user_data: ``{sends, starts, stops}`` (None: an account
    change, or a deletion, which sends nothing)."""
    if change.kind != "event" or change.after is None:
        return None
    before = change.before.get("spec") if change.before else None
    return sent_keys_change(before, change.after.get("spec") or {})


def _sends(change: Change) -> list[Line]:
    keys = user_data_change(change)
    if keys is None:
        return []
    dest = destination(change)
    network = dest[0] if dest else "meta"
    what = "user_data" if network == "meta" else f"to {LABELS[network]}"
    lines = [Line("#", f"sends {what}: {_labels(keys['sends'], network) or 'nothing'}")]
    if change.before is not None and keys["starts"]:
        lines.append(Line("#", f"starts sending: {_labels(keys['starts'], network)}"))
    if keys["stops"]:
        lines.append(Line("#", f"stops sending: {_labels(keys['stops'], network)}"))
    return lines


def _labels(keys: list[str], network: str) -> str:
    return ", ".join(f"{k} (hashed)" if is_hashed(k, network) else k for k in keys)


def drift_paths(change: Change) -> str:
    """The fields changed outside convctl (their values are in the diffs, live -> manifests)."""
    return ", ".join(dict.fromkeys(d.path for d in change.drift))


def change_lines(change: Change) -> list[Line]:
    """A change as Terraform draws a resource: comment header, notes, symbol line, attributes."""
    return [Line("#", f"{change.address} {phrase(change)}"), *_notes(change),
            Line(change.action.symbol, change.address), *_attributes(change)]


def unmanaged_text(stage_count: int, pruned: bool) -> str:
    fate = ("deleted (--prune-unmanaged)" if pruned
            else "kept (use --prune-unmanaged to delete)")
    return f"not in git; uses {plural(stage_count, 'lifecycle-stage slot')}; {fate}"


def pruned_keys(plan: Plan) -> set[tuple[str, str]]:
    """(account, name) of event deletions, to tell a pruned unmanaged event from a kept one."""
    return {(c.account, c.name) for c in plan.changes
            if c.kind == "event" and c.action is Action.DELETE}
