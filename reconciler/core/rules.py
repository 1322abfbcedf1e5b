"""Business-rule checks over a whole desired state (domain-rules.md R1-R19).

Each check adds diagnostics pointing at the offending node with a stable code and, where one
applies, the R-rule. Codes: E1xx shape and formats, E2xx references and names, E3xx R-rules,
W3xx warnings. The table in README "Diagnostic codes" lists them all. What is particular to a
network (LinkedIn and Google Ads blocks, an event's target, Meta-only options, R16's one event
per conversion) is in ``network_rules.py``; the account documents' own checks, and the metadata
checks every document shares, are in ``account_rules.py``.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime

from reconciler.core import models, network_rules
from reconciler.core.account_rules import (
    AccountDoc,
    EventDoc,
    check_accounts,
    check_data_processing,
    check_metadata,
)
from reconciler.core.credentials import DEFAULT_SECRETS_DIR
from reconciler.core.credentials import shown as _shown
from reconciler.core.models import (
    FormSubmission,
    LifecycleStageChange,
)
from reconciler.core.quota import limit_for
from reconciler.core.validate import ManifestSet
from reconciler.core.vocabulary import (
    CUSTOM_EVENT_PREFIX,
    META_USER_KEYS,
    PROPERTY_KEYS,
    REFUSED_STAGE,
    STANDARD_META_EVENTS,
)
from reconciler.diagnostics import Diagnostics

_CUSTOM_EVENT = models.whole_match(r"[A-Za-z0-9_][A-Za-z0-9_ -]{0,49}")

_STANDARD_EVENTS = frozenset(STANDARD_META_EVENTS)
_USER_KEYS = frozenset(META_USER_KEYS)



@dataclass(frozen=True)
class _Facts:
    """What the checks of an account's events read of it, computed once per account: a large
    set has thousands of events per account."""

    doc: AccountDoc
    form_ids: frozenset[str]
    stage_ids: frozenset[str]

    @classmethod
    def of(cls, doc: AccountDoc) -> _Facts:
        spec = doc.model.spec
        return cls(doc, frozenset(f.id for f in spec.forms), frozenset(doc.model.stage_ids()))


def check(ms: ManifestSet, diags: Diagnostics, *,
          secrets_dir: str | None = DEFAULT_SECRETS_DIR, today: date | None = None) -> None:
    """Run every rule over the desired state; ``file:`` references must name a file inside
    ``secrets_dir``, the agent's secrets folder; ``today`` (UTC by default) dates a pinned
    Linkedin-Version (E123)."""
    day = today or datetime.now(UTC).date()
    accounts = check_accounts(ms.accounts, diags, secrets_dir, day)
    facts = {name: _Facts.of(doc) for name, doc in accounts.items()}
    seen: dict[tuple[str, str], EventDoc] = {}
    for ev in ms.events:
        check_metadata(ev, diags)
        account = ev.model.spec.account
        key = (account, ev.model.metadata.name)
        if key in seen:
            first = seen[key].at("metadata", "name")
            diags.error("E205", f"event {_shown(ev.model.name)} is declared twice for account "
                        f"{_shown(key[0])} (first at {first})", ev.at("metadata", "name"))
            continue
        seen[key] = ev
        if account in accounts or account not in ms.invalid_accounts:
            _check_event(ev, facts.get(account), diags)
        else:  # the account document itself is broken and already reported: no E201 noise
            _check_trigger(ev, None, diags)
    _check_quota(list(seen.values()), accounts, diags)
    network_rules.check_unique_conversions(list(seen.values()), diags)


def _check_event(ev: EventDoc, account: _Facts | None, diags: Diagnostics) -> None:
    spec = ev.model.spec
    if account is None:
        diags.error("E201", f"account {_shown(spec.account)} is not declared in any manifest",
                    ev.at("spec", "account"), "R1")
    elif network_rules.check_target(ev, account.doc, diags):
        fb = account.doc.model.spec.meta
        if spec.ad_account not in fb.ad_accounts:
            known = ", ".join(fb.ad_accounts) or "none"
            diags.error("E202", f"ad account {_shown(spec.ad_account or '')} is not one of "
                        f"account {_shown(spec.account)} ad accounts ({known})",
                        ev.at("spec", "adAccount"), "R1")
    network_rules.check_target_format(ev, diags)
    network_rules.check_meta_only(ev, diags)
    _check_trigger(ev, account, diags)
    check_data_processing(ev, diags)


def _check_trigger(ev: EventDoc, account: _Facts | None, diags: Diagnostics) -> None:
    trig = ev.model.spec.trigger
    fs, lc = trig.form_submission, trig.lifecycle_stage_change
    if (fs is None) == (lc is None):
        diags.error("E301", "the trigger must have exactly one of formSubmission or "
                    "lifecycleStageChange", ev.at("spec", "trigger", key=True), "R1")
    elif lc is not None:
        _check_lifecycle(ev, lc, account, diags)
    elif fs is not None:
        _check_form(ev, fs, account, diags)


def _check_lifecycle(ev: EventDoc, lc: LifecycleStageChange, account: _Facts | None,
                     diags: Diagnostics) -> None:
    base = ("spec", "trigger", "lifecycleStageChange")
    destination = ev.model.spec.destination
    if (account is not None and not account.doc.model.spec.lead_sync
            and destination == "meta"):
        diags.error("E302", f"lifecycle-stage events need leadSync: true on account "
                    f"{_shown(account.doc.model.name)}", ev.at(*base, key=True), "R5")
    if not lc.stages:
        diags.error("E303", "select at least one lifecycle stage", ev.at(*base, "stages"), "R6")
    known = account.stage_ids if account is not None else None
    seen: set[str] = set()
    for i, stage in enumerate(lc.stages):
        if stage == REFUSED_STAGE:
            diags.error("E304", "the lifecycle stage 'other' is not supported",
                        ev.at(*base, "stages", i), "R6")
        elif stage in seen:
            diags.error("E306", f"stage {_shown(stage)} is selected twice",
                        ev.at(*base, "stages", i), "R6")
        elif known is not None and stage not in known:
            diags.error("E305", f"unknown lifecycle stage {_shown(stage)}{_hint(stage, known)}; "
                        "custom stages must be declared in the account's customLifecycleStages",
                        ev.at(*base, "stages", i), "R6")
        seen.add(stage)
    if destination != "meta":  # matched by identifiers, not Meta's lead id (R5)
        _check_data_sharing(ev, diags)


def _check_form(ev: EventDoc, fs: FormSubmission, account: _Facts | None,
                diags: Diagnostics) -> None:
    base = ("spec", "trigger", "formSubmission")
    if account is not None and fs.form_id not in account.form_ids:
        diags.error("E203", f"form {_shown(fs.form_id)} is not one of account "
                    f"{_shown(account.doc.model.name)} forms; external forms are refused",
                    ev.at(*base, "formId"), "R12")
    consent = fs.consent
    if consent is None:
        diags.error("E307", "form events need consent: {property: NAME, value: VALUE}",
                    ev.at(*base, key=True), "R14")
    elif not (consent.property.strip() and consent.value.strip()):
        for field in ("property", "value"):
            if not getattr(consent, field).strip():
                diags.error("E307", f"consent {field} must not be empty",
                            ev.at(*base, "consent", field), "R14")
    if ev.model.spec.destination == "meta":
        if fs.facebook_event is None:
            diags.error("E102", "missing required field 'spec.trigger.formSubmission."
                        "facebookEvent'", ev.at(*base, key=True))
        elif fs.facebook_event not in _STANDARD_EVENTS:
            _check_facebook_event(fs.facebook_event, ev, diags)
    value = fs.value
    if value is not None:
        if not (math.isfinite(value.amount) and 0 < value.amount <= models.MAX_AMOUNT):
            diags.error("E309", "value amount must be a finite number greater than 0 and at most "
                        f"{models.MAX_AMOUNT:,}",
                        ev.at(*base, "value", "amount"), "R13")
        if not (_is_currency(value.currency) and value.currency.isupper()):
            _currency_error(value.currency, ev, diags)
    _check_data_sharing(ev, diags)


def _check_facebook_event(name: str, ev: EventDoc, diags: Diagnostics) -> None:
    """E308: ``name`` is not a standard Meta event; a custom one must be well formed."""
    where = ev.at("spec", "trigger", "formSubmission", "facebookEvent")
    if name.startswith(CUSTOM_EVENT_PREFIX):
        custom = name[len(CUSTOM_EVENT_PREFIX):]
        if not _CUSTOM_EVENT(custom):
            diags.error("E308", f"custom event name {_shown(custom)} must be 1-50 letters, digits, "
                        "'_', '-' or spaces", where, "R13")
        return
    exact = {n.lower(): n for n in STANDARD_META_EVENTS}.get(name.lower())
    hint = f"; did you mean '{exact}'?" if exact else _hint(name, set(STANDARD_META_EVENTS))
    diags.error("E308", f"{_shown(name)} is not a standard Meta event{hint} (use "
                "custom:<EventName> for a custom conversion)", where, "R13")


@functools.lru_cache(maxsize=512)
def _is_currency(code: str) -> bool:
    """ISO 4217 lookup, cached: a large set repeats a handful of codes thousands of times."""
    import pycountry

    return pycountry.currencies.get(alpha_3=code) is not None


def _currency_error(code: str, ev: EventDoc, diags: Diagnostics) -> None:
    """E310: ``code`` is not an upper-case ISO 4217 code."""
    hint = ""
    if _is_currency(code.upper()):
        hint = f"; did you mean '{code.upper()}'?"
    diags.error("E310", f"{_shown(code)} is not an ISO 4217 currency code{hint}",
                ev.at("spec", "trigger", "formSubmission", "value", "currency"), "R13")


def _check_data_sharing(ev: EventDoc, diags: Diagnostics) -> None:
    ds = ev.model.spec.data_sharing
    base = ("spec", "dataSharing")
    if not (ds.user_agent and ds.action_source and ds.event_source_url):
        for field, label in (("user_agent", "userAgent"), ("action_source", "actionSource"),
                             ("event_source_url", "eventSourceUrl")):
            if not getattr(ds, field):
                diags.error("E311", f"{label} is always sent and cannot be switched off",
                            ev.at(*base, label), "R15")
    keys: list[str] = []
    for i, prop in enumerate(ds.properties):
        if isinstance(prop, str):
            key = PROPERTY_KEYS.get(prop)
            if key is None:
                diags.error("E312", f"property {_shown(prop)} has no Meta key; map it "
                            f"explicitly: {{property: {_shown(prop)}, as: external_id}}",
                            ev.at(*base, "properties", i), "R15")
            keys.append(key or "")
        elif prop.as_ not in _USER_KEYS:
            diags.error("E312", f"{_shown(prop.as_)} is not a Meta user_data key (one of "
                        f"{', '.join(META_USER_KEYS)})", ev.at(*base, "properties", i, "as"), "R15")
        else:
            keys.append(prop.as_)
    if ev.model.spec.destination != "meta":
        network_rules.check_sharing(ev, keys, diags)
    elif "em" not in keys:
        diags.warning("W301", "email is not shared: Meta matches far fewer events without it",
                      ev.at(*base, "properties"), "R15")


def _check_quota(events: list[EventDoc], accounts: dict[str, AccountDoc],
                 diags: Diagnostics) -> None:
    used: dict[str, int] = defaultdict(int)
    reported: set[str] = set()
    for ev in events:
        spec = ev.model.spec
        if spec.trigger.lifecycle_stage_change is None:
            continue  # a form event uses no slot (R7)
        name = spec.account
        account = accounts.get(name)
        count = ev.model.stage_count
        if account is None or count == 0:
            continue
        before = used[name]
        used[name] += count
        limit = limit_for(account.model.spec.tier)
        if used[name] > limit and name not in reported:
            reported.add(name)
            total = sum(e.model.stage_count for e in events if e.model.spec.account == name)
            diags.error("E313", f"account {_shown(name)} ({account.model.spec.tier}) would use "
                        f"{total} lifecycle-stage slots, limit {limit}: this event takes it from "
                        f"{before} to {used[name]}", ev.at("spec", "trigger",
                                                            "lifecycleStageChange", "stages"),
                        "R9")


def _hint(name: str, options: AbstractSet[str]) -> str:
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""
