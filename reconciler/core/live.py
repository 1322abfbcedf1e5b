"""The live state (product.md §2): what the agent reads and what apply changes.

A live event stores the same ``EventSpec`` a manifest declares, plus server-assigned identity and
bookkeeping: ``id``, ``created_at``, ``updated_at``, ``version`` (optimistic concurrency),
``api`` (``enhanced`` or ``legacy``, R11) and the managed marker with the hash of what was last
applied, which tells drift (live changed outside git) from intent (the manifest changed).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from reconciler.core.models import AccountSpec, ConversionEvent, EventSpec, ResourceKey

MANAGER = "convctl"
_STORED_FINGERPRINT = "_stored_fingerprint"  # an instance-dict entry, not a field (see below)


class _Live(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def content_hash(data: Any) -> str:
    """Stable SHA-256 of JSON-able data (keys sorted): the identity of a content version."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def spec_document(spec: EventSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The comparable form of an event's intent: its spec (aliases, defaults filled) and labels."""
    return {"labels": dict(sorted(labels.items())),
            "spec": spec.model_dump(mode="json", by_alias=True)}


def desired_hash(event: ConversionEvent) -> str:
    return content_hash(spec_document(event.spec, event.metadata.labels))


class LiveAccount(_Live):
    """A CRM account in the live state, with its settings as last written."""

    name: str
    spec: AccountSpec
    labels: dict[str, str] = Field(default_factory=dict)
    version: int = 1
    updated_at: datetime

    @property
    def limit(self) -> int:
        from reconciler.core.quota import limit_for

        return limit_for(self.spec.tier)

    def fingerprint(self) -> str:
        return content_hash(self.model_dump(mode="json", by_alias=True))


class LiveEvent(_Live):
    """A conversion event as it exists in the live state."""

    id: str
    account: str
    name: str
    spec: EventSpec
    labels: dict[str, str] = Field(default_factory=dict)
    api: Literal["enhanced", "legacy"] = "enhanced"
    created_at: datetime
    updated_at: datetime
    version: int = 1
    managed_by: str | None = None
    last_applied_hash: str | None = None

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.account, self.name)

    @property
    def managed(self) -> bool:
        return self.managed_by == MANAGER

    @property
    def stage_count(self) -> int:
        """Quota use (R7)."""
        lc = self.spec.trigger.lifecycle_stage_change
        return len(set(lc.stages)) if lc is not None else 0

    def current_hash(self) -> str:
        return content_hash(spec_document(self.spec, self.labels))

    @property
    def drifted(self) -> bool:
        """Managed, and changed outside git since the last apply."""
        return self.managed and self.last_applied_hash not in (None, self.current_hash())

    def fingerprint(self) -> str:
        """Changes whenever any field changes: what a saved plan compares (stale plans).

        A backend that stores the whole event as one text may hand in the hash of that text
        (``remember_fingerprint``): every field is in it, and it costs a hash instead of a dump.
        """
        stored = self.__dict__.get(_STORED_FINGERPRINT)
        if stored is None or stored[0] != id(self):
            return content_hash(self.model_dump(mode="json", by_alias=True))
        owner, fingerprint, text = stored
        if fingerprint is None:  # the backend's text of the event: hashed when first asked
            fingerprint = hashlib.sha256(text.encode()).hexdigest()
            self.__dict__[_STORED_FINGERPRINT] = (owner, fingerprint, None)
        return str(fingerprint)

    def remember_fingerprint(self, fingerprint: str) -> None:
        """Record the fingerprint a backend computed from its stored form of this event.

        Kept in the instance dict, which pydantic ignores in equality and dumps; bound to this
        object's id, so a ``model_copy`` (which copies the dict, possibly with changed fields)
        computes its own fingerprint instead of inheriting this one.
        """
        self.__dict__[_STORED_FINGERPRINT] = (id(self), fingerprint, None)

    def remember_source(self, text: str) -> None:
        """``remember_fingerprint`` of the SHA-256 of ``text``, the backend's stored form of
        this event (every field in it), computed only if ``fingerprint`` is called: a plan
        printed as text never asks for the fingerprints of its 10,000 unchanged events."""
        self.__dict__[_STORED_FINGERPRINT] = (id(self), None, text)


class EventWrite(_Live):
    """What apply writes for an event: its intent plus the managed marker."""

    account: str
    name: str
    spec: EventSpec
    labels: dict[str, str] = Field(default_factory=dict)
    api: Literal["enhanced", "legacy"] = "enhanced"
    managed_by: str | None = MANAGER
    last_applied_hash: str | None = None

    @classmethod
    def from_manifest(cls, event: ConversionEvent) -> EventWrite:
        return cls(account=event.spec.account, name=event.name, spec=event.spec,
                   labels=dict(event.metadata.labels), last_applied_hash=desired_hash(event))

    @property
    def stage_count(self) -> int:
        lc = self.spec.trigger.lifecycle_stage_change
        return len(set(lc.stages)) if lc is not None else 0
