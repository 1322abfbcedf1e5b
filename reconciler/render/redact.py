"""Defence in depth: no rendered plan may contain a token or raw PII.

Plans never hold secrets (manifests only reference them as ``{env: NAME}`` / ``{file: PATH}``),
but every renderer still passes the plan through ``redact_plan`` and its final text through
``mask_tokens``:

- a plain-string value under a key named like a credential (``accessToken``, ``token``,
  ``clientSecret``, ``password``, ``apiKey``, ``authorization``...) or like contact PII (``email``,
  ``phone``, ``firstname``...) becomes ``MASK``; references (dicts) and non-strings are kept;
- anything shaped like a token (a Meta access token ``EAA...`` or a control-plane ``cvt_...``
  token: ``core.redaction``, the one detector validate and the write paths also use) is masked
  wherever it appears;
- names and messages are made ``printable``: control and bidi-override characters escaped, so a
  name stored before the rules were enforced cannot break a line or reverse the text.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from reconciler.core.plan import Change, FieldDiff, Plan, PlanMessage, Unmanaged
from reconciler.core.redaction import MASK, mask_tokens, printable, printable_lines

__all__ = ["MASK", "is_sensitive_key", "mask_tokens", "printable", "printable_lines", "redact",
           "redact_plan"]
_SECRET_KEY = re.compile(r"token|secret|passw|api_?key|authori[sz]ation|credential|bearer",
                         re.IGNORECASE)
_PII_KEYS = frozenset({
    "email", "phone", "mobilephone", "firstname", "lastname", "dateofbirth", "clientipaddress",
})


def is_sensitive_key(key: str) -> bool:
    """A key whose plain-string value must never be rendered (last segment of a dotted path)."""
    last = key.rsplit(".", 1)[-1]
    return bool(_SECRET_KEY.search(last)) or re.sub(r"[_\-]", "", last.lower()) in _PII_KEYS


def redact(value: Any, key: str | None = None) -> Any:
    """A copy of ``value`` with sensitive strings masked (recursively through dicts and lists)."""
    if isinstance(value, str):
        return MASK if key is not None and is_sensitive_key(key) else mask_tokens(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v, key) for v in value)
    return value


def redact_diff(diff: FieldDiff) -> FieldDiff:
    return replace(diff, path=printable(diff.path), before=redact(diff.before, diff.path),
                   after=redact(diff.after, diff.path))


def redact_change(change: Change) -> Change:
    return replace(
        change,
        name=printable(change.name),
        reason=None if change.reason is None else printable(change.reason),
        diffs=tuple(redact_diff(d) for d in change.diffs),
        drift=tuple(redact_diff(d) for d in change.drift),
        before=redact(change.before), after=redact(change.after),
        renamed_from=None if change.renamed_from is None else printable(change.renamed_from),
    )


def _redact_message(msg: PlanMessage) -> PlanMessage:
    return replace(msg, message=printable(msg.message))


def _redact_unmanaged(u: Unmanaged) -> Unmanaged:
    return replace(u, name=printable(u.name))


def redact_plan(plan: Plan) -> Plan:
    """The plan with every change, message and unmanaged entry redacted."""
    return replace(
        plan,
        changes=tuple(redact_change(c) for c in plan.changes),
        unmanaged=tuple(_redact_unmanaged(u) for u in plan.unmanaged),
        errors=tuple(_redact_message(m) for m in plan.errors),
        warnings=tuple(_redact_message(m) for m in plan.warnings),
    )
