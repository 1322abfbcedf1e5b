"""The ad networks' own rules (pure), one module per network: ``meta``, ``linkedin``, ``google``.

Each module exposes ``RULES: NetworkRules`` (target, token, extra contact properties, the
network's own skip reasons, payload builder, checks); ``rules_for(name)`` finds it. A
``Destination`` (services/ports.py) sends what a ``Builder`` built and answers an ``Outcome``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal, Protocol, cast

from reconciler.core.crm import Contact, FormSubmission, StageChange
from reconciler.core.live import LiveEvent
from reconciler.core.models import AccountSpec, SecretRef


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a Destination answers for one request."""

    kind: Literal["sent", "retry", "pause", "reject"]
    message: str = ""  # the network's own message or a transport summary; never a token or PII
    status: int | None = None  # HTTP status, None when no answer
    code: str | None = None  # the network's error code as text (Meta "190", LinkedIn
    # serviceErrorCode, Google status)
    retry_after: float | None = None  # seconds (retry), from Retry-After or the network's hint
    received: int | None = None  # sent: how many events the network acknowledged (None: all)
    pause_reason: Literal["token", "permission"] | None = None  # pause only
    # reject: per-event reasons by index when the network says which ones (LinkedIn batch);
    # None = the whole request was refused (delivery splits halves, as for Meta)
    rejected: Mapping[int, str] | None = None


class Builder(Protocol):
    def build(self, crm_event: FormSubmission | StageChange,
              contact: Contact | None) -> dict[str, Any]: ...
    # the network's JSON object for one event (what goes into the request, as stored in the
    # outbox)


class NetworkRules(Protocol):
    name: str  # "meta" | "linkedin" | "google"
    label: str  # "Meta" | "LinkedIn" | "Google Ads"
    batch_limit: int  # Meta 1000, LinkedIn 5000, Google 2000
    max_age: timedelta  # oldest event the network takes: Meta 7 days, LinkedIn and Google 90

    def target(self, live: LiveEvent, account: AccountSpec) -> str: ...
    # the outbox/pause key: Meta the pixel id; LinkedIn the conversion rule urn; Google
    # "<customerId>/<conversionAction>"

    def token_ref(self, account: AccountSpec) -> SecretRef: ...

    def properties(self, live: LiveEvent, account: AccountSpec) -> set[str]: ...
    # extra contact properties the network reads (li_fat_id, click-id properties)

    def skip_reason(self, live: LiveEvent, account: AccountSpec,
                    crm_event: FormSubmission | StageChange, contact: Contact) -> str | None: ...
    # the network's own matching rules, after the shared ones (R4, R6, R12, R14, R16)

    def builder(self, live: LiveEvent, account: AccountSpec) -> Builder: ...

    def validate(self, payload: Mapping[str, Any], now: datetime) -> str | None: ...
    # None or a stable reason ("too_old", "in_future", "no_user_id", ...) checked before
    # queueing and again before a retry

    def event_time(self, payload: Mapping[str, Any]) -> int: ...  # epoch SECONDS

    def event_name(self, payload: Mapping[str, Any]) -> str: ...  # for status/dashboard

    def match_keys(self, payload: Mapping[str, Any]) -> tuple[str, ...]: ...
    # which of core/coverage.MATCH_KEYS the payload carries, for coverage


@cache
def rules_for(network: str) -> NetworkRules:
    """The rules of ``network`` (``reconciler.core.networks.<network>.RULES``)."""
    module = importlib.import_module(f"reconciler.core.networks.{network}")
    return cast(NetworkRules, module.RULES)
