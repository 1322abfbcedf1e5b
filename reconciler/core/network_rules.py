"""Manifest rules of the ad networks (R1): LinkedIn and Google Ads blocks, and what an event
may say for its network (docs/networks.md).

Called by ``rules.py``; each finding has its own code (README "Diagnostic codes"):
E121 another network's target, E122-E123 the LinkedIn block, E124 a conversion rule, E125-E126
the Google block, E127 a conversion action, E128 no block for the event's network, E314-E316
Meta-only options on other networks, E317 one conversion used twice (R16), W303-W307 warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from reconciler.core import models, privacy
from reconciler.core.credentials import shown as _shown
from reconciler.core.models import Google, LinkedIn
from reconciler.core.source import Located
from reconciler.core.vocabulary import UNHASHED_KEYS
from reconciler.diagnostics import Diagnostics, SourceLocation

AccountDoc = Located[models.Account]
EventDoc = Located[models.ConversionEvent]

LABELS = {"meta": "Meta", "linkedin": "LinkedIn", "google": "Google Ads"}
BLOCKS = {"meta": "facebook", "linkedin": "linkedin", "google": "google"}
# The target key each network's events name (exactly that one: E121).
TARGETS = {"meta": "adAccount", "linkedin": "conversionRule", "google": "conversionAction"}
TARGET_FIELDS = {"adAccount": "ad_account", "conversionRule": "conversion_rule",
           "conversionAction": "conversion_action"}
_TARGET_ATTRS = tuple((network, key, TARGET_FIELDS[key]) for network, key in TARGETS.items())
# The shared dataSharing keys (vocabulary.META_USER_KEYS) each network is sent, which of them
# leave hashed, and the network's own keys (in clear). A shared key a network does not take is
# dropped for it (W303). LinkedIn: the email as SHA256_EMAIL, names and country as plain
# userInfo, the first-party tracking id; no IP or user agent (its event has no field for
# them). Google: email, phone and names hashed, postal code and country in clear (its address
# format), the click ids. tests/networks/test_sent_keys.py builds payloads with the builders
# (core/networks/) and checks that they send exactly this.
SENT_KEYS = {"linkedin": frozenset({"em", "fn", "ln", "country"}),
             "google": frozenset({"em", "ph", "fn", "ln", "zp", "country"})}
HASHED_KEYS = {"linkedin": frozenset({"em"}), "google": frozenset({"em", "ph", "fn", "ln"})}
OWN_KEYS = {"linkedin": ("li_fat_id",), "google": ("gclid", "gbraid", "wbraid")}
# LinkedIn supports a Linkedin-Version for one year after its release (its versioning policy):
# older versions are refused (E123), the last two months of that year are a warning (W305).
LINKEDIN_VERSION_MONTHS = 12
LINKEDIN_VERSION_WARN_MONTHS = 10


_LI_ACCOUNT = models.whole_match(models.LINKEDIN_AD_ACCOUNT_PATTERN)
_LI_RULE = models.whole_match(models.LINKEDIN_CONVERSION_RULE_PATTERN)
_LI_VERSION = models.whole_match(models.LINKEDIN_VERSION_PATTERN)
_CUSTOMER_ID = models.whole_match(models.GOOGLE_CUSTOMER_ID_PATTERN)
_ACTION = models.whole_match(models.GOOGLE_CONVERSION_ACTION_PATTERN)


def check_linkedin(doc: AccountDoc, li: LinkedIn, diags: Diagnostics, today: date) -> None:
    """E122 the ad account urn, E123/W305 the pinned Linkedin-Version."""
    if not _LI_ACCOUNT(li.ad_account):
        diags.error("E122", f"linkedin adAccount must look like urn:li:sponsoredAccount:<1-20 "
                    f"digits>, got {_shown(li.ad_account)}",
                    doc.at("spec", "linkedin", "adAccount"), "R1")
    if li.version == models.DEFAULT_LINKEDIN_VERSION:
        return  # the version this convctl is built for: it moves with convctl releases
    def where() -> SourceLocation:  # parsed only when a finding needs it
        return doc.at("spec", "linkedin", "version")

    if not _LI_VERSION(li.version):
        diags.error("E123", f"linkedin version must be a Linkedin-Version YYYYMM (e.g. "
                    f"{models.DEFAULT_LINKEDIN_VERSION}), got {_shown(li.version)}", where())
        return
    age = (today.year * 12 + today.month) - (int(li.version[:4]) * 12 + int(li.version[4:]))
    if age < 0:
        diags.error("E123", f"linkedin version {li.version} is in the future (today is "
                    f"{today:%Y%m}): LinkedIn refuses versions it has not released", where())
    elif age >= LINKEDIN_VERSION_MONTHS:
        diags.error("E123", f"linkedin version {li.version} is {age} months old: LinkedIn "
                    f"supports a version for {LINKEDIN_VERSION_MONTHS} months; pin a newer "
                    f"one (e.g. {today:%Y%m})", where())
    elif age >= LINKEDIN_VERSION_WARN_MONTHS:
        diags.warning("W305", f"linkedin version {li.version} is {age} months old: LinkedIn "
                      f"stops serving it after {LINKEDIN_VERSION_MONTHS} months; pin a newer "
                      "one soon", where())


def check_google(doc: AccountDoc, g: Google, diags: Diagnostics) -> None:
    """E125 customerId, E126 loginCustomerId, W306 a redundant login customer, W307 consent."""
    if not _CUSTOMER_ID(g.customer_id):
        diags.error("E125", f"google customerId must be the Google Ads account's 10 digits "
                    f"without dashes, got {_shown(g.customer_id)}",
                    doc.at("spec", "google", "customerId"), "R1")
    login = g.login_customer_id
    if login is not None and not _CUSTOMER_ID(login):
        diags.error("E126", f"google loginCustomerId must be the manager account's 10 digits "
                    f"without dashes, got {_shown(login)}",
                    doc.at("spec", "google", "loginCustomerId"))
    elif login is not None and login == g.customer_id:
        diags.warning("W306", "google loginCustomerId is the customerId itself: leave it out "
                      "(it names a manager account the token acts through)",
                      doc.at("spec", "google", "loginCustomerId"))
    if g.consent.ad_user_data == "denied":
        diags.warning("W307", "google consent adUserData is denied: Google Ads does not use "
                      "the events' user identifiers, so only events with a click id match",
                      doc.at("spec", "google", "consent", "adUserData"))


def check_account_options(doc: AccountDoc, diags: Diagnostics) -> None:
    """E315: Limited Data Use is Meta's; an account without a facebook block has no use for it."""
    spec = doc.model.spec
    if spec.data_processing_options is not None and spec.facebook is None:
        diags.error("E315", "dataProcessingOptions is Meta's Limited Data Use: an account "
                    "without a facebook block cannot set it",
                    doc.at("spec", "dataProcessingOptions", key=True))


def no_block(account: str, network: str) -> str:
    """E128's words (R1): validate's for an event, the state backends' for an account write
    that would leave live events of ``network`` without their block."""
    return (f"account {_shown(account)} has no {BLOCKS[network]} block: {LABELS[network]} "
            f"events need their account to set up {LABELS[network]}")


def check_target(ev: EventDoc, account: AccountDoc, diags: Diagnostics) -> bool:
    """E121 another network's target, E102 the network's target missing, E128 the account has
    no block for the network. True when the event's own target is there to check further."""
    spec, network = ev.model.spec, ev.model.spec.destination
    own = TARGETS[network]
    for other_network, key, field in _TARGET_ATTRS:
        if key != own and getattr(spec, field) is not None:
            diags.error("E121", f"{key} is the target of {LABELS[other_network]} events; a "
                        f"{LABELS[network]} event names its {own} only",
                        ev.at("spec", key, key=True), "R1")
    if getattr(account.model.spec, BLOCKS[network]) is None:
        diags.error("E128", no_block(spec.account, network),
                    ev.at("spec", "network") if spec.network else ev.at("spec", "account"), "R1")
        return False
    if getattr(spec, TARGET_FIELDS[own]) is None:
        diags.error("E102", f"missing required field 'spec.{own}'", ev.at("spec", key=True))
        return False
    return network == "meta"  # Meta's ad account is checked against the account (E202)


def check_target_format(ev: EventDoc, diags: Diagnostics) -> None:
    """E124 a LinkedIn conversion rule urn, E127 a Google conversion action id."""
    spec = ev.model.spec
    if spec.conversion_rule is not None and not _LI_RULE(spec.conversion_rule):
        diags.error("E124", f"conversionRule must look like urn:lla:llaPartnerConversion:<1-20 "
                    f"digits>, got {_shown(spec.conversion_rule)}",
                    ev.at("spec", "conversionRule"), "R1")
    if spec.conversion_action is not None and not _ACTION(spec.conversion_action):
        diags.error("E127", f"conversionAction must be the conversion action's numeric id "
                    f"(1-20 digits), got {_shown(spec.conversion_action)}",
                    ev.at("spec", "conversionAction"), "R1")


def check_meta_only(ev: EventDoc, diags: Diagnostics) -> None:
    """E314-E316: options only Meta has, refused on another network's event."""
    spec = ev.model.spec
    network = spec.destination
    if network == "meta":
        return
    label = LABELS[network]
    trig = spec.trigger
    fs, lc = trig.form_submission, trig.lifecycle_stage_change
    if fs is not None and fs.facebook_event is not None:
        what = "conversion rule" if network == "linkedin" else "conversion action"
        diags.error("E314", f"facebookEvent is Meta's: a {label} event's {what} says what the "
                    "conversion is", ev.at("spec", "trigger", "formSubmission", "facebookEvent",
                                           key=True), "R13")
    if spec.data_processing_options is not None:
        diags.error("E315", f"dataProcessingOptions is Meta's Limited Data Use; {label} events "
                    "cannot set it", ev.at("spec", "dataProcessingOptions", key=True))
    if lc is not None and lc.contacts == "adInteractions":
        diags.error("E316", f"contacts: adInteractions reads Meta's ad interactions; {label} "
                    "lifecycle events send all contacts (contacts: all)",
                    ev.at("spec", "trigger", "lifecycleStageChange", "contacts"), "R8")


def check_unique_conversions(events: list[EventDoc], diags: Diagnostics) -> None:
    """E317: each LinkedIn conversion rule / Google conversion action is the target of one event
    of an account (R16: each conversion once; two events would count it twice)."""
    first: dict[tuple[str, str, str], EventDoc] = {}
    for ev in events:
        spec = ev.model.spec
        if spec.destination == "meta" or spec.target is None:
            continue
        key = (spec.account, spec.destination, spec.target)
        field = TARGETS[spec.destination]
        if key in first:
            diags.error("E317", f"{field} {_shown(spec.target)} is already the target of event "
                        f"{_shown(first[key].model.name)} of account {_shown(spec.account)} (at "
                        f"{first[key].at('spec', field)}): each conversion is sent by one event",
                        ev.at("spec", field), "R16")
        else:
            first[key] = ev


def check_sharing(ev: EventDoc, keys: list[str], diags: Diagnostics) -> bool:
    """W303 keys the network is not sent, W304 a Google lifecycle event with neither email nor
    phone. False for Meta (rules.py warns about email itself, W301)."""
    spec = ev.model.spec
    network = spec.destination
    if network == "meta":
        return False

    def where() -> SourceLocation:  # positions are parsed only when a finding needs one
        return ev.at("spec", "dataSharing", "properties")

    dropped = sorted({k for k in keys if k and k not in SENT_KEYS[network]})
    if dropped:
        diags.warning("W303", f"{', '.join(dropped)} not sent to {LABELS[network]}, which "
                      f"takes {', '.join(sorted(SENT_KEYS[network]))} only (docs/networks.md)",
                      where(), "R15")
    if network == "google" and spec.trigger.lifecycle_stage_change is not None and not (
            {"em", "ph"} & set(keys)):
        diags.warning("W304", "neither email nor phone is shared: Google Ads matches this "
                      "lifecycle event by click id (gclid, gbraid, wbraid) alone", where(), "R15")
    elif "em" not in keys:
        diags.warning("W301", f"email is not shared: {LABELS[network]} matches far fewer events "
                      "without it", where(), "R15")
    return True


# ---- what an event sends, per network (plans, ``events show``) ------------------------------

def destination_of(spec: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """``(network, target key, target)`` of an event's spec document (aliases, as dumped)."""
    network = spec.get("network") or "meta"
    key = TARGETS.get(network, "adAccount")
    return network, key, spec.get(key)


def sent_keys(spec: Mapping[str, Any]) -> list[str]:
    """The keys an event sends: Meta's user_data keys (``privacy.sent_keys``); for LinkedIn
    and Google Ads the shared keys that network is sent (SENT_KEYS) and its own keys."""
    network, _, _ = destination_of(spec)
    keys = privacy.sent_keys(spec)
    if network == "meta":
        return keys
    return [k for k in keys if k in SENT_KEYS[network]] + list(OWN_KEYS[network])


def is_hashed(key: str, network: str) -> bool:
    """Whether ``key`` leaves hashed for ``network``."""
    if network == "meta":
        return key not in UNHASHED_KEYS
    return key in HASHED_KEYS[network]


def sent_keys_change(before: Mapping[str, Any] | None,
                     after: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``privacy.sent_keys_change`` for an event of any network: ``{"sends", "hashed",
    "starts", "stops"}`` between two spec documents (None: absent)."""
    old = sent_keys(before) if before is not None else []
    new = sent_keys(after) if after is not None else []
    network = destination_of(after or before or {})[0]
    return {"sends": new, "hashed": [k for k in new if is_hashed(k, network)],
            "starts": [k for k in new if k not in old], "stops": [k for k in old if k not in new]}
