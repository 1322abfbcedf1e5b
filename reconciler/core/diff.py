"""Documents of live and desired objects (``Change.before``/``after``) and field-level diffs.

The planner compares the comparable form of an object (``live.spec_document``) with ``!=`` first
and only diffs what differs (architecture.md: per key, not one DeepDiff over the whole state).
Paths are dotted manifest paths with the camelCase aliases users write, e.g.
``spec.trigger.lifecycleStageChange.stages``; lists are compared whole. Immutable fields
(product.md §3: ``account``, ``adAccount``, trigger kind, ``formId``; and the ``network`` with its
target, ``conversionRule`` or ``conversionAction``) force a replacement.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.live import spec_document
from reconciler.core.models import AccountSpec, EventSpec
from reconciler.core.network_rules import TARGET_FIELDS
from reconciler.core.plan import FieldDiff

FORM = "spec.trigger.formSubmission"
LIFECYCLE = "spec.trigger.lifecycleStageChange"


def event_document(name: str, spec: EventSpec, labels: dict[str, str]) -> dict[str, Any]:
    """What ``Change.before``/``after`` hold for an event: ``spec_document`` plus the name."""
    return {"name": name, **spec_document(spec, labels)}


def account_document(name: str, spec: AccountSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The same for an account; its token appears only as its env/file reference."""
    return {"name": name, "labels": dict(sorted(labels.items())),
            "spec": spec.model_dump(mode="json", by_alias=True)}


def document_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[FieldDiff]:
    """Field diffs of two documents, with manifest paths (``metadata.name``,
    ``metadata.labels.team``, ``spec.adAccount``, ...)."""
    return field_diffs(manifest_view(before), manifest_view(after))


def manifest_view(document: dict[str, Any]) -> dict[str, Any]:
    """A ``Change.before``/``after`` document laid out as the manifest is."""
    return {"metadata": {"name": document["name"], "labels": document["labels"]},
            "spec": document["spec"]}


def field_diffs(before: Any, after: Any, prefix: str = "") -> list[FieldDiff]:
    """Changed leaves between two JSON-like values; mappings recurse, anything else is whole."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(after) + [k for k in before if k not in after]
        out: list[FieldDiff] = []
        for key in keys:
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(field_diffs(before.get(key), after.get(key), path))
        return out
    return [FieldDiff(prefix, before, after)]


def immutable_changes(before: EventSpec, after: EventSpec) -> dict[str, str]:
    """``{path: field label}`` of every immutable field that differs (each forces a replace)."""
    causes: dict[str, str] = {}
    if before.account != after.account:
        causes["spec.account"] = "account"
    if before.destination != after.destination:
        causes["spec.network"] = "network"
    for key, field in TARGET_FIELDS.items():  # Meta's ad account, LinkedIn's rule, Google's action
        if getattr(before, field) != getattr(after, field):
            causes[f"spec.{key}"] = key
    old, new = before.trigger, after.trigger
    if old.kind != new.kind:
        causes[FORM] = causes[LIFECYCLE] = "trigger kind"
    elif old.form_submission is not None and new.form_submission is not None and (
            old.form_submission.form_id != new.form_submission.form_id):
        causes[f"{FORM}.formId"] = "formId"
    return causes


def mark_forcing(diffs: list[FieldDiff], causes: dict[str, str]) -> tuple[FieldDiff, ...]:
    """The diffs, with ``forces_replacement`` set on those at (or under) an immutable path."""
    def forcing(path: str) -> bool:
        return any(path == p or path.startswith(p + ".") for p in causes)

    return tuple(FieldDiff(d.path, d.before, d.after, True) if forcing(d.path) else d
                 for d in diffs)


def stage_count_of(document: dict[str, Any] | None) -> int:
    """Quota use (R7) of a manifest-shaped event document; 0 for none or a form event."""
    if document is None:
        return 0
    lc = document["spec"]["trigger"].get("lifecycleStageChange")
    return len(set(lc["stages"])) if lc else 0
