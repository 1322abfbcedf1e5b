"""CRM events and contacts (frozen records, in ``crm_records``, re-exported here) and the
parsers that produce them (pure).

Three inputs (hubspot-contract.md, issue 5):

- JSONL lines for ``convctl agent ingest``: ``contact`` upserts, ``lifecycleStageChange`` and
  ``formSubmission`` records (``parse_jsonl_line``, here; unknown fields refused).
- HubSpot webhook arrays and the form-ingest body modelled on HubSpot Forms API v3
  (``crm_hubspot``, which builds the same records with the shapes and helpers shared here:
  ``StrictShape``, ``NonEmptyId``, ``PortalId``, ``load_json``, ``describe_error``,
  ``new_submission``).

Errors raise ``CrmParseError`` naming the field and the problem, never echoing a value (PII).
A form submission's client fields are checked at ingest, on every path (``client_fields``): an
IP address that is not IPv4 or IPv6 (stdlib ``ipaddress``; zone ids refused) or a user agent
that is not printable ASCII of at most ``MAX_USER_AGENT`` characters is dropped, not stored,
and its reason kept in ``FormSubmission.dropped`` for the store to count (``agent status``):
Meta refuses a whole batch for one bad ``client_ip_address``, and an e-mail address in that field
would go to Meta in clear.
``source_id`` identifies the source event for ``event_id`` (capi.py): a form submission by its
submission id, a stage change by its content (portal, contact, stage, time in ms), so a webhook
and a JSONL back-fill of the same change yield the same ``event_id`` and Meta deduplicates them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, NamedTuple

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from reconciler.core.crm_records import Contact as Contact
from reconciler.core.crm_records import CrmEvent as CrmEvent
from reconciler.core.crm_records import DropReason as DropReason
from reconciler.core.crm_records import FormSubmission as FormSubmission
from reconciler.core.crm_records import Ignored as Ignored
from reconciler.core.crm_records import StageChange as StageChange
from reconciler.core.crm_records import merge_contacts as merge_contacts
from reconciler.errors import PermanentError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_USER_AGENT: Final = 512  # longer than any browser's; a bound on what is stored and sent
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # ASCII, no leading zero
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class CrmParseError(PermanentError):
    """A CRM input (JSONL line, webhook body, ingest body) is malformed; the message names the
    field, never its value."""


class DedupKey(NamedTuple):
    """hubspot-contract.md: the identity of a webhook event (``eventId`` alone is not unique)."""

    portal_id: int
    subscription_id: int
    event_id: int
    object_id: int
    occurred_at: int
    property_name: str | None
    property_value: str | None

    def digest(self) -> str:
        """A stable string form (hex SHA-256) for a unique index."""
        return hashlib.sha256(orjson.dumps(list(self))).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    key: DedupKey
    event: StageChange | Ignored


@dataclass(frozen=True, slots=True)
class FormIngest:
    """A parsed ingest body: the submission and the contact fields it carries."""

    submission: FormSubmission
    contact: Contact


def client_fields(ip: str | None, agent: str | None
                  ) -> tuple[str | None, str | None, tuple[DropReason, ...]]:
    """A submission's IP address (canonical form) and user agent, each None when absent or
    invalid, and the reasons of what was dropped."""
    dropped: list[DropReason] = []
    ip = ip.strip() if ip else None
    if ip and not _IPV4.fullmatch(ip):  # the usual dotted quad is canonical as it is
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
        if address is None or getattr(address, "scope_id", None):
            ip = None
            dropped.append("invalid_ip_address")
        else:
            ip = str(address)
    agent = agent.strip() if agent else None
    if agent and not (len(agent) <= MAX_USER_AGENT and agent.isascii() and agent.isprintable()):
        agent = None
        dropped.append("invalid_user_agent")
    return ip or None, agent or None, tuple(dropped)


def new_submission(portal: int, form_id: str, submission_id: str, contact_id: str,
                submitted_at: datetime, page_url: str | None, ip: str | None,
                agent: str | None) -> FormSubmission:
    ip, agent, dropped = client_fields(ip, agent)
    return FormSubmission(portal, form_id, submission_id, contact_id, submitted_at, page_url,
                          ip, agent, dropped)


def stage_source_id(portal_id: int, contact_id: str, stage: str, occurred_at: datetime) -> str:
    """Content identity of a stage change: same change, same id, whatever path it came by."""
    ms = to_epoch_ms(occurred_at)
    raw = orjson.dumps([portal_id, contact_id, stage, ms])
    return "stage:" + hashlib.sha256(raw).hexdigest()[:32]


def to_epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH  # its fields, not ``// timedelta(milliseconds=1)``: 4x cheaper
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# --- pydantic shapes -----------------------------------------------------------------------

class StrictShape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NonEmptyId = Annotated[str, Field(min_length=1)]
PortalId = Annotated[int, Field(gt=0, lt=2**63)]  # SQLite INTEGER range



class _ContactLine(StrictShape):
    type: Literal["contact"]
    portalId: PortalId
    contactId: NonEmptyId
    properties: dict[str, str | None] = Field(default_factory=dict)
    metaLeadId: str | None = None
    adInteraction: bool = False
    fbc: str | None = None
    fbp: str | None = None


class _StageLine(StrictShape):
    type: Literal["lifecycleStageChange"]
    portalId: PortalId
    contactId: NonEmptyId
    stage: NonEmptyId
    occurredAt: AwareDatetime


class _FormLine(StrictShape):
    type: Literal["formSubmission"]
    portalId: PortalId
    formId: NonEmptyId
    submissionId: NonEmptyId
    contactId: NonEmptyId
    submittedAt: AwareDatetime
    pageUrl: str | None = None
    ipAddress: str | None = None
    userAgent: str | None = None


_Line = Annotated[_ContactLine | _StageLine | _FormLine, Field(discriminator="type")]
_LINE: TypeAdapter[Any] = TypeAdapter(_Line)


# --- parsing --------------------------------------------------------------------------------

def describe_error(exc: ValidationError) -> str:
    """Field paths and messages only (include_input=False keeps values out)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def load_json(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CrmParseError(f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None


def parse_jsonl_line(line: bytes | str) -> Contact | StageChange | FormSubmission:
    """One JSONL ingest line -> a contact upsert, a stage change or a form submission.

    Lines in the plain shape (exact JSON types, ``Z``/``+HH:MM`` times) take a fast path that
    gives exactly what the pydantic models give; anything else goes through the models, which
    also word every error, so a bad line's message does not depend on the path."""
    data = load_json(line)
    if not isinstance(data, dict):
        raise CrmParseError("a line must be a JSON object")
    fast = _fast_line(data)
    if fast is not None:
        return fast
    kind = data.get("type")
    if kind not in ("contact", "lifecycleStageChange", "formSubmission"):
        raise CrmParseError(
            "field 'type' must be one of contact, lifecycleStageChange, formSubmission")
    try:
        parsed = _LINE.validate_python(data)
    except ValidationError as exc:
        raise CrmParseError(f"invalid {kind} line: {describe_error(exc)}") from None
    try:
        return _from_line(parsed)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 has no UTC equivalent
        raise CrmParseError(f"invalid {kind} line: a time is out of range") from None


# --- the fast path: plain lines, checked by hand -------------------------------------------
#
# Each check below is stricter than the model's (exact types: no bool for an int, no number for
# a string; only ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)`` times), so whatever passes
# it is valid for the model too and converts to the same values; whatever fails it (valid or
# not) goes to the model. tests/agent/test_jsonl_fast.py holds both paths to the same answers.

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_CONTACT_KEYS = frozenset({"type", "portalId", "contactId", "properties", "metaLeadId",
                           "adInteraction", "fbc", "fbp"})
_STAGE_KEYS = frozenset({"type", "portalId", "contactId", "stage", "occurredAt"})
_FORM_KEYS = frozenset({"type", "portalId", "formId", "submissionId", "contactId",
                        "submittedAt", "pageUrl", "ipAddress", "userAgent"})
_FORM_REQUIRED = frozenset({"type", "portalId", "formId", "submissionId", "contactId",
                            "submittedAt"})


def _fast_time(value: object) -> datetime | None:
    if type(value) is not str or not _ISO.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _opt_str(value: object) -> bool:
    return value is None or type(value) is str


def _fast_line(d: dict[str, Any]) -> Contact | StageChange | FormSubmission | None:
    """The line's value when it is plainly valid; None: ask the models."""
    portal, kind = d.get("portalId"), d.get("type")
    if type(portal) is not int or not 0 < portal < 2**63:
        return None
    if kind == "lifecycleStageChange":
        contact_id, stage = d.get("contactId"), d.get("stage")
        at = _fast_time(d.get("occurredAt"))
        if (d.keys() != _STAGE_KEYS or type(contact_id) is not str or not contact_id
                or type(stage) is not str or not stage or at is None):
            return None
        return StageChange(portal, contact_id, stage, at,
                           stage_source_id(portal, contact_id, stage, at))
    if kind == "formSubmission":
        return _fast_form(d, portal)
    if kind == "contact":
        return _fast_contact(d, portal)
    return None


def _fast_form(d: dict[str, Any], portal: int) -> FormSubmission | None:
    keys = d.keys()
    if not (_FORM_REQUIRED <= keys <= _FORM_KEYS):
        return None
    form_id, sub_id, contact_id = d["formId"], d["submissionId"], d["contactId"]
    page, ip, agent = d.get("pageUrl"), d.get("ipAddress"), d.get("userAgent")
    at = _fast_time(d["submittedAt"])
    if (type(form_id) is not str or not form_id or type(sub_id) is not str or not sub_id
            or type(contact_id) is not str or not contact_id or at is None
            or not (_opt_str(page) and _opt_str(ip) and _opt_str(agent))):
        return None
    return new_submission(portal, form_id, sub_id, contact_id, at, page, ip, agent)


def _fast_contact(d: dict[str, Any], portal: int) -> Contact | None:
    if not d.keys() <= _CONTACT_KEYS:
        return None
    contact_id, props = d.get("contactId"), d.get("properties", {})
    lead, ad = d.get("metaLeadId"), d.get("adInteraction", False)
    fbc, fbp = d.get("fbc"), d.get("fbp")
    if (type(contact_id) is not str or not contact_id or type(props) is not dict
            or type(ad) is not bool or not (_opt_str(lead) and _opt_str(fbc) and _opt_str(fbp))):
        return None
    clean: dict[str, str] = {}
    for key, value in props.items():
        if type(value) is str:
            clean[key] = value
        elif value is not None:
            return None
    return Contact(portal, contact_id, clean, lead or None, ad, fbc or None, fbp or None)


def _from_line(p: _ContactLine | _StageLine | _FormLine) -> Contact | StageChange | FormSubmission:
    if isinstance(p, _ContactLine):
        props = {k: v for k, v in p.properties.items() if v is not None}
        return Contact(p.portalId, p.contactId, props, p.metaLeadId or None,
                       p.adInteraction, p.fbc or None, p.fbp or None)
    if isinstance(p, _StageLine):
        at = p.occurredAt.astimezone(UTC)
        return StageChange(p.portalId, p.contactId, p.stage, at,
                           stage_source_id(p.portalId, p.contactId, p.stage, at))
    return new_submission(p.portalId, p.formId, p.submissionId, p.contactId,
                       p.submittedAt.astimezone(UTC), p.pageUrl, p.ipAddress, p.userAgent)
