"""The CRM's records as frozen data (pure): contacts, lifecycle-stage changes, form submissions
and the webhook events the agent stores without acting on them. ``core.crm`` parses them (and
re-exports them: import them from there).

``Contact``, ``StageChange`` and ``FormSubmission`` are made twice per event in the agent
(parsed at ingest, read back from the store). Their ``__init__`` is written out: it sets each
slot through its descriptor (``_CONTACT_SLOTS``, ... set below each class), where the generated
one of a frozen dataclass goes through ``object.__setattr__`` per field, at twice the cost of
the whole construction. Everything else (frozen, eq, hash, repr, ``replace``) is the
dataclass's; ``tests/agent/test_crm.py`` holds them to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Final, Literal

DropReason = Literal["invalid_ip_address", "invalid_user_agent"]


def _slot_setters(cls: type) -> tuple[Callable[[object, Any], None], ...]:
    """The ``__set__`` of each field's slot descriptor, in field order."""
    return tuple(getattr(cls, f.name).__set__ for f in fields(cls))


@dataclass(frozen=True, slots=True, init=False)
class Contact:
    """A CRM contact as the agent needs it (properties are CRM property names -> values)."""

    portal_id: int
    contact_id: str
    properties: dict[str, str] = field(default_factory=dict)
    meta_lead_id: str | None = None
    ad_interaction: bool = False
    fbc: str | None = None
    fbp: str | None = None

    def __init__(self, portal_id: int, contact_id: str, properties: dict[str, str] | None = None,
                 meta_lead_id: str | None = None, ad_interaction: bool = False,
                 fbc: str | None = None, fbp: str | None = None) -> None:
        put = _CONTACT_SLOTS
        put[0](self, portal_id)
        put[1](self, contact_id)
        put[2](self, {} if properties is None else properties)  # a new dict each time
        put[3](self, meta_lead_id)
        put[4](self, ad_interaction)
        put[5](self, fbc)
        put[6](self, fbp)

    def merged(self, update: Contact) -> Contact:
        """This contact updated by ``update``: properties merged, set scalars win."""
        return replace(
            self,
            properties={**self.properties, **update.properties},
            meta_lead_id=update.meta_lead_id or self.meta_lead_id,
            ad_interaction=update.ad_interaction or self.ad_interaction,
            fbc=update.fbc or self.fbc,
            fbp=update.fbp or self.fbp,
        )


_CONTACT_SLOTS: Final = _slot_setters(Contact)


def merge_contacts(contacts: Iterable[Contact]) -> dict[tuple[int, str], Contact]:
    """One contact per (portal, contact id): each later update merged into the earlier ones."""
    merged: dict[tuple[int, str], Contact] = {}
    for contact in contacts:
        key = (contact.portal_id, contact.contact_id)
        earlier = merged.get(key)
        merged[key] = contact if earlier is None else earlier.merged(contact)
    return merged


@dataclass(frozen=True, slots=True, init=False)
class StageChange:
    """A contact moved into a lifecycle stage (standard value or custom stage id)."""

    portal_id: int
    contact_id: str
    stage: str
    occurred_at: datetime
    source_id: str

    def __init__(self, portal_id: int, contact_id: str, stage: str, occurred_at: datetime,
                 source_id: str) -> None:
        put = _STAGE_SLOTS
        put[0](self, portal_id)
        put[1](self, contact_id)
        put[2](self, stage)
        put[3](self, occurred_at)
        put[4](self, source_id)


_STAGE_SLOTS: Final = _slot_setters(StageChange)


@dataclass(frozen=True, slots=True, init=False)
class FormSubmission:
    """A form submission (R12-R16). ``contact_id`` is ``submission:<id>`` when none was given."""

    portal_id: int
    form_id: str
    submission_id: str
    contact_id: str
    submitted_at: datetime
    page_url: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    # what the parser dropped from the input (not part of the event: not stored, not compared)
    dropped: tuple[DropReason, ...] = field(default=(), compare=False)

    def __init__(self, portal_id: int, form_id: str, submission_id: str, contact_id: str,
                 submitted_at: datetime, page_url: str | None = None,
                 ip_address: str | None = None, user_agent: str | None = None,
                 dropped: tuple[DropReason, ...] = ()) -> None:
        put = _FORM_SLOTS
        put[0](self, portal_id)
        put[1](self, form_id)
        put[2](self, submission_id)
        put[3](self, contact_id)
        put[4](self, submitted_at)
        put[5](self, page_url)
        put[6](self, ip_address)
        put[7](self, user_agent)
        put[8](self, dropped)

    @property
    def source_id(self) -> str:
        return f"form:{self.submission_id}"


_FORM_SLOTS: Final = _slot_setters(FormSubmission)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A webhook event the agent stores but does not act on (with why)."""

    portal_id: int
    subscription_type: str
    object_id: str
    occurred_at: datetime
    reason: str


CrmEvent = StageChange | FormSubmission
