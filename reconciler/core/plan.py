"""Plans as data (architecture rule 2): frozen, comparable, serializable.

A ``Plan`` is the ordered list of ``Change``s that make the live state match the manifests,
with per-account quota traces (R9), unmanaged live events, warnings, errors and the fingerprints
of every live object read (saved plans refuse to apply when one has moved).
The JSON form (``to_json``/``from_json``) is what ``plan --format json`` and ``--out`` write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FORMAT_VERSION = "1.0"


def _is_newer(version: object) -> bool:
    """Whether a plan's ``format_version`` (``"MAJOR.MINOR"``) is later than ours."""
    try:
        theirs = tuple(int(p) for p in str(version).split("."))
    except ValueError:
        return False
    return theirs > tuple(int(p) for p in FORMAT_VERSION.split("."))


class Action(StrEnum):
    """What happens to one object. Values are Terraform's ``actions`` arrays joined by ','."""

    CREATE = "create"
    UPDATE = "update"
    DELETE_CREATE = "delete,create"  # replace, destroying first (no quota headroom)
    CREATE_DELETE = "create,delete"  # replace, creating first
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def actions(self) -> list[str]:
        return self.value.split(",")

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete,create": "-/+", "create,delete": "+/-",
                "delete": "-", "no-op": " "}[self.value]

    @property
    def is_replace(self) -> bool:
        return self in (Action.DELETE_CREATE, Action.CREATE_DELETE)

    @property
    def is_destructive(self) -> bool:
        return "delete" in self.actions


@dataclass(frozen=True)
class FieldDiff:
    """One changed field: dotted manifest path, old and new value."""

    path: str
    before: Any
    after: Any
    forces_replacement: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after,
                "forces_replacement": self.forces_replacement}


@dataclass(frozen=True)
class Change:
    """One planned change to an event (``kind='event'``) or an account (``kind='account'``)."""

    kind: str
    account: str
    name: str
    action: Action
    reason: str | None = None
    diffs: tuple[FieldDiff, ...] = ()
    before: dict[str, Any] | None = None  # live, manifest-shaped
    after: dict[str, Any] | None = None  # desired, manifest-shaped
    live_id: str | None = None
    live_version: int | None = None
    quota_delta: int = 0
    renamed_from: str | None = None
    drift: tuple[FieldDiff, ...] = ()  # live changed outside git since the last apply

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.account}" if self.kind == "account" else (
            f"event.{self.account}/{self.name}")

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address, "kind": self.kind, "account": self.account,
            "name": self.name, "actions": self.action.actions, "reason": self.reason,
            "diffs": [d.to_json() for d in self.diffs], "before": self.before,
            "after": self.after, "live_id": self.live_id, "live_version": self.live_version,
            "quota_delta": self.quota_delta, "renamed_from": self.renamed_from,
            "drift": [d.to_json() for d in self.drift],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(
            kind=data["kind"], account=data["account"], name=data["name"],
            action=Action(",".join(data["actions"])), reason=data.get("reason"),
            diffs=tuple(FieldDiff(**d) for d in data.get("diffs", [])),
            before=data.get("before"), after=data.get("after"), live_id=data.get("live_id"),
            live_version=data.get("live_version"), quota_delta=data.get("quota_delta", 0),
            renamed_from=data.get("renamed_from"),
            drift=tuple(FieldDiff(**d) for d in data.get("drift", [])),
        )


@dataclass(frozen=True)
class AccountQuota:
    """Lifecycle-stage slots of one account across the plan (R7, R9)."""

    account: str
    tier: str
    limit: int
    before: int
    after: int
    peak: int

    @property
    def exceeded(self) -> bool:
        return self.peak > self.limit or self.after > self.limit


@dataclass(frozen=True)
class Unmanaged:
    """A live event made outside git: reported with the quota it uses, never deleted unless
    ``--prune-unmanaged``."""

    account: str
    name: str
    live_id: str
    stage_count: int


@dataclass(frozen=True)
class PlanMessage:
    """A plan-level error or warning, with the R-rule it enforces."""

    code: str
    message: str
    rule: str | None = None

    def render(self) -> str:
        return f"[{self.code}] {self.message}" + (f" ({self.rule})" if self.rule else "")


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = ()  # in apply order; no-ops excluded
    quotas: tuple[AccountQuota, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    errors: tuple[PlanMessage, ...] = ()
    warnings: tuple[PlanMessage, ...] = ()
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # "event:<id>", "account:<name>"
    manifests_hash: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def count(self, *actions: Action) -> int:
        return sum(1 for c in self.changes if c.action in actions and c.kind == "event")

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "changes": [c.to_json() for c in self.changes],
            "quotas": [vars(q) for q in self.quotas],
            "unmanaged": [vars(u) for u in self.unmanaged],
            "errors": [vars(e) for e in self.errors],
            "warnings": [vars(w) for w in self.warnings],
            "fingerprints": dict(sorted(self.fingerprints.items())),
            "manifests_hash": self.manifests_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            newer = _is_newer(version)
            raise ValueError(f"its format_version is {version!r}"
                             + (f", newer than this convctl reads ({FORMAT_VERSION}): upgrade "
                                "convctl" if newer else f"; this convctl reads {FORMAT_VERSION}"))
        return cls(
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            quotas=tuple(AccountQuota(**q) for q in data.get("quotas", [])),
            unmanaged=tuple(Unmanaged(**u) for u in data.get("unmanaged", [])),
            errors=tuple(PlanMessage(**e) for e in data.get("errors", [])),
            warnings=tuple(PlanMessage(**w) for w in data.get("warnings", [])),
            fingerprints=dict(data.get("fingerprints", {})),
            manifests_hash=data.get("manifests_hash", ""),
        )
