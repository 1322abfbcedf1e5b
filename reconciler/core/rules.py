"""Business-rule checks over a whole desired state (domain-rules.md R1-R19).

Each check adds diagnostics pointing at the offending node with a stable code and, where one
applies, the R-rule. Codes: E1xx shape and formats, E2xx references and names, E3xx R-rules,
W3xx warnings. The table in README "Diagnostic codes" lists them all. What is particular to a
network (LinkedIn and Google Ads blocks, an event's target, Meta-only options, R16's one event
per conversion) is in ``network_rules.py``.
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
from reconciler.core.credentials import DEFAULT_SECRETS_DIR, file_ref_problem, looks_like_secret
from reconciler.core.credentials import shown as _shown
from reconciler.core.models import (
    Account,
    ConversionEvent,
    Facebook,
    FormSubmission,
    LifecycleStageChange,
    SecretRef,
)
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

is_name = models.whole_match(models.NAME_PATTERN)
_STAGE_ID = models.whole_match(models.STAGE_ID_PATTERN)
_AD_ACCOUNT = models.whole_match(models.AD_ACCOUNT_PATTERN)
_ENV_NAME = models.whole_match(models.ENV_NAME_PATTERN)
_BUSINESS_ID = models.whole_match(models.BUSINESS_ID_PATTERN)
_PIXEL_ID = models.whole_match(models.PIXEL_ID_PATTERN)
_COUNTRY_CODE = models.whole_match(models.COUNTRY_CODE_PATTERN)
_CUSTOM_EVENT = models.whole_match(r"[A-Za-z0-9_][A-Za-z0-9_ -]{0,49}")

_STANDARD_EVENTS = frozenset(STANDARD_META_EVENTS)
_USER_KEYS = frozenset(META_USER_KEYS)

AccountDoc = Located[Account]
EventDoc = Located[ConversionEvent]


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
    accounts = _check_accounts(ms.accounts, diags, secrets_dir, day)
    facts = {name: _Facts.of(doc) for name, doc in accounts.items()}
    seen: dict[tuple[str, str], EventDoc] = {}
    for ev in ms.events:
        _check_metadata(ev, diags)
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


def _check_metadata(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
    """Names match whole; labels hold no secrets (issue 10: they are printed everywhere)."""
    meta = doc.model.metadata
    if not is_name(meta.name) or (meta.renamed_from is not None
                                  and not is_name(meta.renamed_from)):
        _name_errors(doc, diags)
    for key, value in meta.labels.items():
        if looks_like_secret(key) or looks_like_secret(value):
            diags.error("E104", f"label {_shown(key)} holds a value that looks like a token (not "
                        "shown): labels are printed in plans, the API and logs, so they must not "
                        "hold secrets", doc.at("metadata", "labels", key))


def _name_errors(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
    meta = doc.model.metadata
    for field, name in (("name", meta.name), ("renamedFrom", meta.renamed_from)):
        if name is not None and not is_name(name):
            diags.error("E106", f"invalid {field} {_shown(name)}: use lowercase letters, digits "
                        "and '-', starting and ending with a letter or digit, at most 63 "
                        "characters", doc.at("metadata", field))


def _check_accounts(docs: list[AccountDoc], diags: Diagnostics,
                    secrets_dir: str | None, today: date) -> dict[str, AccountDoc]:
    by_name: dict[str, AccountDoc] = {}
    by_portal: dict[int, AccountDoc] = {}
    for doc in docs:
        _check_metadata(doc, diags)
        acc = doc.model
        if acc.name in by_name:
            diags.error("E204", f"account {_shown(acc.name)} is declared twice (first at "
                        f"{by_name[acc.name].at('metadata', 'name')})", doc.at("metadata", "name"))
            continue
        if acc.spec.portal_id in by_portal:
            other = by_portal[acc.spec.portal_id].model.name
            diags.error("E206", f"portalId {acc.spec.portal_id} is already used by account "
                        f"{_shown(other)}", doc.at("spec", "portalId"))
        by_name[acc.name] = doc
        by_portal[acc.spec.portal_id] = doc
        _check_account(doc, diags, today)
        _check_secret_ref(doc, diags, secrets_dir)
    return by_name


def _check_account(doc: AccountDoc, diags: Diagnostics, today: date) -> None:
    spec = doc.model.spec
    if spec.facebook is None and spec.linkedin is None and spec.google is None:
        diags.error("E120", "an account needs at least one network block: facebook, linkedin "
                    "or google", doc.at("spec", key=True), "R1")
    if spec.facebook is not None:
        _check_facebook(doc, spec.facebook, diags)
    if spec.linkedin is not None:
        network_rules.check_linkedin(doc, spec.linkedin, diags, today)
    if spec.google is not None:
        network_rules.check_google(doc, spec.google, diags)
    network_rules.check_account_options(doc, diags)
    _check_account_rest(doc, diags)


def _check_facebook(doc: AccountDoc, fb: Facebook, diags: Diagnostics) -> None:
    if not _BUSINESS_ID(fb.business_id):
        diags.error("E110", f"businessId must be the Business Manager's numeric id (5-20 digits), "
                    f"got {_shown(fb.business_id)}", doc.at("spec", "facebook", "businessId"), "R2")
    if not _PIXEL_ID(fb.pixel_id):
        diags.error("E111", f"pixelId must be the Meta pixel's numeric id (15-16 digits), got "
                    f"{_shown(fb.pixel_id)}", doc.at("spec", "facebook", "pixelId"), "R3")
    if not fb.ad_accounts:
        diags.error("E112", "adAccounts must list at least one ad account (act_<digits>)",
                    doc.at("spec", "facebook", "adAccounts"), "R2")
    for i, ad in enumerate(fb.ad_accounts):
        if not _AD_ACCOUNT(ad):
            diags.error("E112", f"ad account {_shown(ad)} must look like act_<1-20 digits>",
                        doc.at("spec", "facebook", "adAccounts", i), "R2")


def _check_account_rest(doc: AccountDoc, diags: Diagnostics) -> None:
    spec = doc.model.spec
    code = spec.default_country_code
    if code is not None and not _COUNTRY_CODE(code):
        diags.error("E113", f"defaultCountryCode must be a calling code of 1-3 digits, got "
                    f"{_shown(code)}", doc.at("spec", "defaultCountryCode"))
    _check_unique_ids(doc, diags)
    _check_data_processing(doc, diags)
    if not spec.sync_web_conversions:
        diags.warning("W302", f"account {_shown(doc.model.name)} has syncWebConversions off: "
                      "its events exist but Meta cannot use them to optimize ad delivery",
                      doc.at("spec", "syncWebConversions"), "R17")


def _check_secret_ref(doc: AccountDoc, diags: Diagnostics, secrets_dir: str | None) -> None:
    """The token reference names a variable or a file in the secrets folder, never a token.
    ``secrets_dir=None`` (a write to the live state, which serves agents with folders of their
    own) checks the path's shape only: absolute, no ``..``; each agent checks its folder.

    A reference that may be a pasted token is never echoed (product.md §1: literal secrets are
    refused)."""
    spec = doc.model.spec
    for block, net in (("facebook", spec.facebook), ("linkedin", spec.linkedin),
                       ("google", spec.google)):
        if net is not None:
            _check_one_secret_ref(doc, block, net.access_token, diags, secrets_dir)


def _check_one_secret_ref(doc: AccountDoc, block: str, ref: SecretRef, diags: Diagnostics,
                          secrets_dir: str | None) -> None:
    field, value = ("env", ref.env) if ref.env is not None else ("file", ref.file or "")
    path = ("spec", block, "accessToken", field)  # its position only on an error: parsed lazily
    if looks_like_secret(value):
        diags.error("E104", f"accessToken.{field} looks like a token, not a reference (value not "
                    "shown): put the token in an environment variable or a secret file and name "
                    "that here", doc.at(*path))
    elif field == "env" and not _ENV_NAME(value):
        diags.error("E104", "accessToken.env must be an environment variable name "
                    "(letters, digits, '_'; value not shown)", doc.at(*path))
    elif field == "file" and (problem := file_ref_problem(value, secrets_dir)) is not None:
        folder = f" {secrets_dir}" if secrets_dir else ""
        diags.error("E114", f"accessToken.file {_shown(value)}: {problem}; the agent reads "
                    f"secret files only from its secrets folder{folder} (set with "
                    "--secrets-dir or CONVCTL_SECRETS_DIR)", doc.at(*path))


def _check_unique_ids(doc: AccountDoc, diags: Diagnostics) -> None:
    spec = doc.model.spec
    forms: set[str] = set()
    for i, form in enumerate(spec.forms):
        if form.id in forms:
            diags.error("E207", f"form id {_shown(form.id)} is listed twice",
                        doc.at("spec", "forms", i, "id"), "R12")
        forms.add(form.id)
    stages: set[str] = set()
    for i, stage in enumerate(spec.custom_lifecycle_stages):
        problem = ("must be numeric (1-20 digits)" if not _STAGE_ID(stage.id)
                   else "is listed twice" if stage.id in stages else None)
        if problem:  # the position only when needed: every event write checks its account
            diags.error("E207", f"custom stage id {_shown(stage.id)} {problem}",
                        doc.at("spec", "customLifecycleStages", i, "id"), "R6")
        stages.add(stage.id)


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
    _check_data_processing(ev, diags)


def _check_data_processing(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
    """E115: Limited Data Use options as Meta documents them (privacy.py)."""
    options = doc.model.spec.data_processing_options
    if options is not None:
        check_options(options, lambda message, path: diags.error(
            "E115", f"dataProcessingOptions: {message}",
            doc.at("spec", "dataProcessingOptions", *path)))


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
