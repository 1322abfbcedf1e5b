"""The ad networks as pure rules (issue 16): one module per network, each exposing ``RULES``.

A network's rules say where an event goes (``target``: the outbox and pause key), which token
it needs, which extra contact properties it reads, its own matching rules after the shared ones
(``skip_reason``), how a payload is built and checked, and how to read the event time, name and
match keys back from a stored payload. ``Outcome`` is what a destination (the sender of one
network, in ``adapters.networks``) answers for one request; delivery reads nothing else.
``rules_for(network)`` finds the module ``reconciler.core.networks.<network>`` (cached).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Generic, Literal, Protocol, TypeVar, get_args

from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, SecretRef

PauseReason = Literal["token", "permission", "version"]
"""Why a network's answer pauses a target: its token (401), a permission (403), or an API
version the network no longer serves (LinkedIn's 426: upgrade convctl, or change the pin)."""
PAUSE_REASONS: tuple[PauseReason, ...] = get_args(PauseReason)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a Destination answers for one request."""

    kind: Literal["sent", "retry", "pause", "reject"]
    # the network's own message or a transport summary; never a token or PII
    message: str = ""
    status: int | None = None  # HTTP status, None when no answer
    # the network's error code as text (Meta "190", LinkedIn serviceErrorCode, Google status)
    code: str | None = None
    # seconds (retry), from Retry-After or the network's hint
    retry_after: float | None = None
    # sent: how many events the network acknowledged (None: all)
    received: int | None = None
    pause_reason: PauseReason | None = None  # pause only
    # reject: per-event reasons by index when the network says which ones (LinkedIn batch);
    # None = the whole request was refused (delivery splits halves, as for Meta)
    rejected: Mapping[int, str] | None = None


class Builder(Protocol):
    def build(self, crm_event: FormSubmission | StageChange,
              contact: Contact | None) -> dict[str, Any]:
        """The network's JSON object for one event (what goes into the request, as stored in
        the outbox)."""


class NetworkRules(Protocol):
    name: str  # "meta" | "linkedin" | "google"
    label: str  # "Meta" | "LinkedIn" | "Google Ads"
    batch_limit: int  # Meta 1000, LinkedIn 5000, Google 2000
    # oldest event the network takes: Meta 7 days, LinkedIn 90 days, Google 90 days
    max_age: timedelta

    def target(self, live: LiveEvent, account: AccountSpec) -> str:
        """The outbox/pause key: Meta the pixel id; LinkedIn the conversion rule urn; Google
        ``<customerId>/<conversionAction>``."""

    def token_ref(self, account: AccountSpec) -> SecretRef: ...

    def properties(self, live: LiveEvent, account: AccountSpec) -> set[str]:
        """Extra contact properties the network reads (li_fat_id, click-id properties)."""

    def skip_reason(self, live: LiveEvent, account: AccountSpec,
                    crm_event: FormSubmission | StageChange, contact: Contact) -> str | None:
        """The network's own matching rules, after the shared ones (R4, R6, R12, R14, R16):
        Meta: no_lead_id (R5), no_ad_interaction (R8); LinkedIn: no_user_id (neither email
        nor li_fat_id); Google: no_click_id_or_identifier (lifecycle: neither
        gclid/gbraid/wbraid nor email/phone)."""

    def builder(self, live: LiveEvent, account: AccountSpec) -> Builder: ...

    def validate(self, payload: Mapping[str, Any], now: datetime) -> str | None:
        """None or a stable reason ("too_old", "in_future", "no_user_id", ...) checked before
        queueing and again before a retry."""

    def event_time(self, payload: Mapping[str, Any]) -> int:
        """Epoch SECONDS (LinkedIn stores ms: convert)."""

    def event_name(self, payload: Mapping[str, Any]) -> str:
        """For status/dashboard ("Lead", the conversion rule, the action)."""

    def match_keys(self, payload: Mapping[str, Any]) -> tuple[str, ...]:
        """Which of ``core.coverage.MATCH_KEYS`` the payload carries (em, ph, fn, ln, ...,
        external_id, ip, ua ...), for coverage."""


B = TypeVar("B")


class BuilderMemo(Generic[B]):
    """Builders made once per (live event, account) pair, for the rules that read a contact
    outside building (``skip_reason``). Keyed by the objects' ids, holding the objects so an id
    is never reused while its entry lives; emptied when ``size`` pairs are held."""

    def __init__(self, make: Callable[[LiveEvent, AccountSpec], B], size: int = 256) -> None:
        self._make, self._size = make, size
        self._made: dict[tuple[int, int], tuple[LiveEvent, AccountSpec, B]] = {}

    def __call__(self, live: LiveEvent, account: AccountSpec) -> B:
        found = self._made.get((id(live), id(account)))
        if found is not None and found[0] is live and found[1] is account:
            return found[2]
        if len(self._made) >= self._size:
            self._made.clear()
        builder = self._make(live, account)
        self._made[(id(live), id(account))] = (live, account, builder)
        return builder


@cache
def rules_for(network: str) -> NetworkRules:
    """``importlib.import_module(f"reconciler.core.networks.{network}").RULES``, cached."""
    rules: NetworkRules = importlib.import_module(f"reconciler.core.networks.{network}").RULES
    return rules
