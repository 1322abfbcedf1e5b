"""Business-rule checks over a whole desired state (domain-rules.md R1-R19).

Each check adds diagnostics pointing at the offending node with a stable code and, where one
applies, the R-rule. Codes: E1xx shape and formats, E2xx references and names, E3xx R-rules,
W3xx warnings. The table in README "Diagnostic codes" lists them all.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import defaultdict

from reconciler.core.models import NAME_PATTERN, Account, ConversionEvent
from reconciler.core.privacy import check_options
from reconciler.core.quota import limit_for
from reconciler.core.source import Located
from reconciler.core.validate import ManifestSet
from reconciler.core.vocabulary import (
    CUSTOM_EVENT_PREFIX,
    META_USER_KEYS,
    PROPERTY_KEYS,
    REFUSED_STAGE,
    STANDARD_META_EVENTS,
)
from reconciler.diagnostics import Diagnostics

_NAME = re.compile(NAME_PATTERN)
_DIGITS = re.compile(r"^\d+$")
_AD_ACCOUNT = re.compile(r"^act_\d+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CUSTOM_EVENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ -]{0,49}$")

AccountDoc = Located[Account]
EventDoc = Located[ConversionEvent]


def check(ms: ManifestSet, diags: Diagnostics) -> None:
    """Run every rule over the desired state."""
    accounts = _check_accounts(ms.accounts, diags)
    seen: dict[tuple[str, str], EventDoc] = {}
    for ev in ms.events:
        _check_name(ev, diags)
        key = (ev.model.spec.account, ev.model.name)
        if key in seen:
            first = seen[key].at("metadata", "name")
            diags.error("E205", f"event '{ev.model.name}' is declared twice for account "
                        f"'{key[0]}' (first at {first})", ev.at("metadata", "name"))
            continue
        seen[key] = ev
        if ev.model.spec.account in accounts or ev.model.spec.account not in ms.invalid_accounts:
            _check_event(ev, accounts.get(ev.model.spec.account), diags)
        else:  # the account document itself is broken and already reported: no E201 noise
            _check_trigger(ev, None, diags)
    _check_quota(list(seen.values()), accounts, diags)


def _check_name(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
    name = doc.model.metadata.name
    if not _NAME.match(name):
        diags.error("E106", f"invalid name '{name}': use lowercase letters, digits and '-', "
                    "starting and ending with a letter or digit, at most 63 characters",
                    doc.at("metadata", "name"))


def _check_accounts(docs: list[AccountDoc], diags: Diagnostics) -> dict[str, AccountDoc]:
    by_name: dict[str, AccountDoc] = {}
    by_portal: dict[int, AccountDoc] = {}
    for doc in docs:
        _check_name(doc, diags)
        acc = doc.model
        if acc.name in by_name:
            diags.error("E204", f"account '{acc.name}' is declared twice (first at "
                        f"{by_name[acc.name].at('metadata', 'name')})", doc.at("metadata", "name"))
            continue
        if acc.spec.portal_id in by_portal:
            other = by_portal[acc.spec.portal_id].model.name
            diags.error("E206", f"portalId {acc.spec.portal_id} is already used by account "
                        f"'{other}'", doc.at("spec", "portalId"))
        by_name[acc.name] = doc
        by_portal[acc.spec.portal_id] = doc
        _check_account(doc, diags)
    return by_name


def _check_account(doc: AccountDoc, diags: Diagnostics) -> None:
    spec = doc.model.spec
    fb = spec.facebook
    if not re.fullmatch(r"\d{5,20}", fb.business_id):
        diags.error("E110", f"businessId must be the Business Manager's numeric id (5-20 digits), "
                    f"got '{fb.business_id}'", doc.at("spec", "facebook", "businessId"), "R2")
    if not re.fullmatch(r"\d{15,16}", fb.pixel_id):
        diags.error("E111", f"pixelId must be the Meta pixel's numeric id (15-16 digits), got "
                    f"'{fb.pixel_id}'", doc.at("spec", "facebook", "pixelId"), "R3")
    if not fb.ad_accounts:
        diags.error("E112", "adAccounts must list at least one ad account (act_<digits>)",
                    doc.at("spec", "facebook", "adAccounts"), "R2")
    for i, ad in enumerate(fb.ad_accounts):
        if not _AD_ACCOUNT.match(ad):
            diags.error("E112", f"ad account '{ad}' must look like act_<digits>",
                        doc.at("spec", "facebook", "adAccounts", i), "R2")
    env = fb.access_token.env
    if env is not None and not _ENV_NAME.match(env):
        # May be a pasted token: never echo it (product.md §1, literal secrets are refused).
        diags.error("E104", "accessToken.env must be an environment variable name "
                    "(letters, digits, '_'; value not shown)",
                    doc.at("spec", "facebook", "accessToken", "env"))
    code = spec.default_country_code
    if code is not None and not re.fullmatch(r"[1-9]\d{0,2}", code):
        diags.error("E113", f"defaultCountryCode must be a calling code of 1-3 digits, got "
                    f"'{code}'", doc.at("spec", "defaultCountryCode"))
    _check_unique_ids(doc, diags)
    _check_data_processing(doc, diags)
    if not spec.sync_web_conversions:
        diags.warning("W302", f"account '{doc.model.name}' has syncWebConversions off: its events "
                      "exist but Meta cannot use them to optimize ad delivery",
                      doc.at("spec", "syncWebConversions"), "R17")


def _check_unique_ids(doc: AccountDoc, diags: Diagnostics) -> None:
    spec = doc.model.spec
    forms: set[str] = set()
    for i, form in enumerate(spec.forms):
        if form.id in forms:
            diags.error("E207", f"form id '{form.id}' is listed twice",
                        doc.at("spec", "forms", i, "id"), "R12")
        forms.add(form.id)
    stages: set[str] = set()
    for i, stage in enumerate(spec.custom_lifecycle_stages):
        where = doc.at("spec", "customLifecycleStages", i, "id")
        if not _DIGITS.match(stage.id):
            diags.error("E207", f"custom stage id '{stage.id}' must be numeric", where, "R6")
        elif stage.id in stages:
            diags.error("E207", f"custom stage id '{stage.id}' is listed twice", where, "R6")
        stages.add(stage.id)


def _check_event(ev: EventDoc, account: AccountDoc | None, diags: Diagnostics) -> None:
    spec = ev.model.spec
    if account is None:
        diags.error("E201", f"account '{spec.account}' is not declared in any manifest",
                    ev.at("spec", "account"), "R1")
    elif spec.ad_account not in account.model.spec.facebook.ad_accounts:
        known = ", ".join(account.model.spec.facebook.ad_accounts) or "none"
        diags.error("E202", f"ad account '{spec.ad_account}' is not one of account "
                    f"'{spec.account}' ad accounts ({known})", ev.at("spec", "adAccount"), "R1")
    _check_trigger(ev, account, diags)
    _check_data_processing(ev, diags)


def _check_data_processing(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
    """E114: Limited Data Use options Meta documents (privacy.py)."""
    options = doc.model.spec.data_processing_options
    if options is not None:
        check_options(options, lambda message, path: diags.error(
            "E114", f"dataProcessingOptions: {message}",
            doc.at("spec", "dataProcessingOptions", *path)))


def _check_trigger(ev: EventDoc, account: AccountDoc | None, diags: Diagnostics) -> None:
    trig = ev.model.spec.trigger
    if (trig.form_submission is None) == (trig.lifecycle_stage_change is None):
        diags.error("E301", "the trigger must have exactly one of formSubmission or "
                    "lifecycleStageChange", ev.at("spec", "trigger", key=True), "R1")
        return
    if trig.lifecycle_stage_change is not None:
        _check_lifecycle(ev, account, diags)
    else:
        _check_form(ev, account, diags)


def _check_lifecycle(ev: EventDoc, account: AccountDoc | None, diags: Diagnostics) -> None:
    lc = ev.model.spec.trigger.lifecycle_stage_change
    assert lc is not None
    base = ("spec", "trigger", "lifecycleStageChange")
    if account is not None and not account.model.spec.lead_sync:
        diags.error("E302", f"lifecycle-stage events need leadSync: true on account "
                    f"'{account.model.name}'", ev.at(*base, key=True), "R5")
    if not lc.stages:
        diags.error("E303", "select at least one lifecycle stage", ev.at(*base, "stages"), "R6")
    known = account.model.stage_ids() if account is not None else None
    seen: set[str] = set()
    for i, stage in enumerate(lc.stages):
        where = ev.at(*base, "stages", i)
        if stage == REFUSED_STAGE:
            diags.error("E304", "the lifecycle stage 'other' is not supported", where, "R6")
        elif stage in seen:
            diags.error("E306", f"stage '{stage}' is selected twice", where, "R6")
        elif known is not None and stage not in known:
            diags.error("E305", f"unknown lifecycle stage '{stage}'{_hint(stage, known)}; custom "
                        "stages must be declared in the account's customLifecycleStages",
                        where, "R6")
        seen.add(stage)


def _check_form(ev: EventDoc, account: AccountDoc | None, diags: Diagnostics) -> None:
    fs = ev.model.spec.trigger.form_submission
    assert fs is not None
    base = ("spec", "trigger", "formSubmission")
    if account is not None and fs.form_id not in {f.id for f in account.model.spec.forms}:
        diags.error("E203", f"form '{fs.form_id}' is not one of account "
                    f"'{account.model.name}' forms; external forms are refused",
                    ev.at(*base, "formId"), "R12")
    if fs.consent is None:
        diags.error("E307", "form events need consent: {property: NAME, value: VALUE}",
                    ev.at(*base, key=True), "R14")
    else:
        for field in ("property", "value"):
            if not getattr(fs.consent, field).strip():
                diags.error("E307", f"consent {field} must not be empty",
                            ev.at(*base, "consent", field), "R14")
    _check_facebook_event(fs.facebook_event, ev, diags)
    if fs.value is not None:
        if not (math.isfinite(fs.value.amount) and fs.value.amount > 0):
            diags.error("E309", "value amount must be a finite number greater than 0",
                        ev.at(*base, "value", "amount"), "R13")
        _check_currency(fs.value.currency, ev, diags)
    _check_data_sharing(ev, diags)


def _check_facebook_event(name: str, ev: EventDoc, diags: Diagnostics) -> None:
    where = ev.at("spec", "trigger", "formSubmission", "facebookEvent")
    if name in STANDARD_META_EVENTS:
        return
    if name.startswith(CUSTOM_EVENT_PREFIX):
        custom = name[len(CUSTOM_EVENT_PREFIX):]
        if not _CUSTOM_EVENT.match(custom):
            diags.error("E308", f"custom event name '{custom}' must be 1-50 letters, digits, "
                        "'_', '-' or spaces", where, "R13")
        return
    exact = {n.lower(): n for n in STANDARD_META_EVENTS}.get(name.lower())
    hint = f"; did you mean '{exact}'?" if exact else _hint(name, set(STANDARD_META_EVENTS))
    diags.error("E308", f"'{name}' is not a standard Meta event{hint} (use custom:<EventName> "
                "for a custom conversion)", where, "R13")


@functools.lru_cache(maxsize=512)
def _is_currency(code: str) -> bool:
    """ISO 4217 lookup, cached: a large set repeats a handful of codes thousands of times."""
    import pycountry

    return pycountry.currencies.get(alpha_3=code) is not None


def _check_currency(code: str, ev: EventDoc, diags: Diagnostics) -> None:
    if _is_currency(code) and code.isupper():
        return
    hint = ""
    if _is_currency(code.upper()):
        hint = f"; did you mean '{code.upper()}'?"
    diags.error("E310", f"'{code}' is not an ISO 4217 currency code{hint}",
                ev.at("spec", "trigger", "formSubmission", "value", "currency"), "R13")


def _check_data_sharing(ev: EventDoc, diags: Diagnostics) -> None:
    ds = ev.model.spec.data_sharing
    base = ("spec", "dataSharing")
    for field, label in (("user_agent", "userAgent"), ("action_source", "actionSource"),
                         ("event_source_url", "eventSourceUrl")):
        if not getattr(ds, field):
            diags.error("E311", f"{label} is always sent and cannot be switched off",
                        ev.at(*base, label), "R15")
    keys: list[str] = []
    for i, prop in enumerate(ds.properties):
        if isinstance(prop, str):
            if prop not in PROPERTY_KEYS:
                diags.error("E312", f"property '{prop}' has no Meta key; map it explicitly: "
                            f"{{property: {prop}, as: external_id}}",
                            ev.at(*base, "properties", i), "R15")
            keys.append(PROPERTY_KEYS.get(prop, ""))
        elif prop.as_ not in META_USER_KEYS:
            diags.error("E312", f"'{prop.as_}' is not a Meta user_data key (one of "
                        f"{', '.join(META_USER_KEYS)})", ev.at(*base, "properties", i, "as"), "R15")
        else:
            keys.append(prop.as_)
    if "em" not in keys:
        diags.warning("W301", "email is not shared: Meta matches far fewer events without it",
                      ev.at(*base, "properties"), "R15")


def _check_quota(events: list[EventDoc], accounts: dict[str, AccountDoc],
                 diags: Diagnostics) -> None:
    used: dict[str, int] = defaultdict(int)
    reported: set[str] = set()
    for ev in events:
        name = ev.model.spec.account
        account = accounts.get(name)
        if account is None or ev.model.stage_count == 0:
            continue
        before = used[name]
        used[name] += ev.model.stage_count
        limit = limit_for(account.model.spec.tier)
        if used[name] > limit and name not in reported:
            reported.add(name)
            total = sum(e.model.stage_count for e in events if e.model.spec.account == name)
            diags.error("E313", f"account '{name}' ({account.model.spec.tier}) would use {total} "
                        f"lifecycle-stage slots, limit {limit}: this event takes it from "
                        f"{before} to {used[name]}", ev.at("spec", "trigger",
                                                            "lifecycleStageChange", "stages"),
                        "R9")


def _hint(name: str, options: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""
