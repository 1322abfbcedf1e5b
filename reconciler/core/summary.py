"""One-line summary of a desired state: counts, lifecycle-stage slots, verdict."""

from __future__ import annotations

from reconciler.core.quota import limit_for
from reconciler.core.validate import ManifestSet
from reconciler.diagnostics import Diagnostics


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summarize(ms: ManifestSet, diags: Diagnostics) -> str:
    """E.g. ``2 accounts, 6 events, 41/150 lifecycle-stage slots used: OK``."""
    names = {a.model.name for a in ms.accounts}
    used = sum(e.model.stage_count for e in ms.events if e.model.spec.account in names)
    limit = sum(limit_for(a.model.spec.tier) for a in ms.accounts)
    errors, warnings = len(diags.errors), len(diags.warnings)
    if errors:
        verdict = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    elif warnings:
        verdict = f"OK with {_plural(warnings, 'warning')}"
    else:
        verdict = "OK"
    return (f"{_plural(len(ms.accounts), 'account')}, {_plural(len(ms.events), 'event')}, "
            f"{used}/{limit} lifecycle-stage slots used: {verdict}")
