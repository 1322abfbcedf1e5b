"""Manifest models (product.md §1): ``Account`` and ``ConversionEvent``, ``apiVersion: convctl/v1``.

The models fix the *shape* of a manifest: field names, types, defaults, unknown fields refused.
Formats and business rules that need a precise position or an R-rule (ids, stages, quota,
references) are checked in ``rules.py`` so every finding gets its own code and node.
Patterns are still published in the JSON Schema (``json_schema_extra``) for editors. The
formats, bounds, the strict base model and ``SecretRef`` are in ``model_base.py`` (re-exported).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from reconciler.core.model_base import (
    AD_ACCOUNT_PATTERN,
    API_VERSION,
    BUSINESS_ID_PATTERN,
    COUNTRY_CODE_PATTERN,
    CURRENCY_PATTERN,
    DEFAULT_LINKEDIN_VERSION,
    ENV_NAME_PATTERN,
    GOOGLE_CONVERSION_ACTION_PATTERN,
    GOOGLE_CUSTOMER_ID_PATTERN,
    LINKEDIN_AD_ACCOUNT_PATTERN,
    LINKEDIN_CONVERSION_RULE_PATTERN,
    LINKEDIN_VERSION_PATTERN,
    MAX_AMOUNT,
    MAX_PORTAL_ID,
    NAME_PATTERN,
    NETWORKS,
    PIXEL_ID_PATTERN,
    STAGE_ID_PATTERN,
    ResourceKey,
    SecretRef,
    StrictModel,
    pattern,
    whole_match,
)

__all__ = [  # the vocabulary the models are built from (model_base), re-exported
    "AD_ACCOUNT_PATTERN", "API_VERSION", "BUSINESS_ID_PATTERN", "COUNTRY_CODE_PATTERN",
    "CURRENCY_PATTERN", "DEFAULT_LINKEDIN_VERSION", "ENV_NAME_PATTERN",
    "GOOGLE_CONVERSION_ACTION_PATTERN", "GOOGLE_CUSTOMER_ID_PATTERN",
    "LINKEDIN_AD_ACCOUNT_PATTERN", "LINKEDIN_CONVERSION_RULE_PATTERN",
    "LINKEDIN_VERSION_PATTERN", "MAX_AMOUNT", "MAX_PORTAL_ID", "NAME_PATTERN", "NETWORKS",
    "PIXEL_ID_PATTERN", "STAGE_ID_PATTERN", "ResourceKey", "SecretRef", "whole_match",
]


class Metadata(StrictModel):
    name: str = Field(
        description="Unique name: lowercase letters, digits and '-', at most 63 characters.",
        json_schema_extra=pattern(NAME_PATTERN),
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free-form labels (e.g. team: growth)."
    )
    renamed_from: str | None = Field(
        default=None,
        alias="renamedFrom",
        description="Previous name: the plan renames the live event in place instead of "
        "deleting and re-creating it.",
    )


class CustomStage(StrictModel):
    id: str = Field(description="Numeric id of the custom lifecycle stage (R6).",
                    json_schema_extra=pattern(STAGE_ID_PATTERN))
    label: str = Field(description="Display name of the stage, sent to Meta as event_name.")


class Form(StrictModel):
    id: str = Field(description="The form's id (GUID) in the CRM account (R12).")
    name: str = Field(description="The form's display name.")


class Facebook(StrictModel):
    business_id: str = Field(alias="businessId",
                             description="Meta Business Manager id owning the ad accounts (R2).",
                             json_schema_extra=pattern(BUSINESS_ID_PATTERN))
    pixel_id: str = Field(alias="pixelId",
                          description="Meta pixel (dataset) id server events are sent to (R3).",
                          json_schema_extra=pattern(PIXEL_ID_PATTERN))
    ad_accounts: list[Annotated[str, Field(json_schema_extra=pattern(AD_ACCOUNT_PATTERN))]] = (
        Field(alias="adAccounts", description="Meta ad accounts of the business: act_<digits>."))
    access_token: SecretRef = Field(alias="accessToken",
                                    description="Conversions API token: {env: NAME} or "
                                    "{file: PATH}, never the token itself.")
    lead_id_property: str = Field(default="meta_lead_id", alias="leadIdProperty",
                                  description="Contact property holding the Meta lead id (R5).")
    ad_interaction_property: str = Field(
        default="meta_ad_interaction", alias="adInteractionProperty",
        description="Contact property telling the contact interacted with tracked ads (R8).")


class LinkedIn(StrictModel):
    """LinkedIn Conversions API setup of an account (docs/networks.md)."""

    ad_account: str = Field(alias="adAccount",
                            description="LinkedIn ad account owning the conversion rules: "
                            "urn:li:sponsoredAccount:<digits>.",
                            json_schema_extra=pattern(LINKEDIN_AD_ACCOUNT_PATTERN))
    access_token: SecretRef = Field(alias="accessToken",
                                    description="OAuth access token (rw_conversions): "
                                    "{env: NAME} or {file: PATH}, never the token itself.")
    version: str = Field(default=DEFAULT_LINKEDIN_VERSION,
                         description="The Linkedin-Version header (YYYYMM) requests are pinned to.",
                         json_schema_extra=pattern(LINKEDIN_VERSION_PATTERN))
    first_party_id_property: str = Field(
        default="li_fat_id", alias="firstPartyIdProperty",
        description="Contact property holding LinkedIn's first-party ads tracking id "
        "(li_fat_id).")


class GoogleClickIds(StrictModel):
    gclid: str = Field(default="hs_google_click_id",
                       description="Contact property holding the Google click id (gclid).")
    gbraid: str = Field(default="gbraid", description="Contact property holding gbraid.")
    wbraid: str = Field(default="wbraid", description="Contact property holding wbraid.")


class GoogleConsent(StrictModel):
    ad_user_data: Literal["granted", "denied"] = Field(
        default="granted", alias="adUserData",
        description="Consent to send user data to Google for advertising, for events whose "
        "own consent property does not decide it.")
    ad_personalization: Literal["granted", "denied"] = Field(
        default="denied", alias="adPersonalization",
        description="Consent to personalized advertising.")


class Google(StrictModel):
    """Google Ads through the Data Manager API (docs/networks.md)."""

    customer_id: str = Field(alias="customerId",
                             description="Google Ads account (10 digits, no dashes) owning the "
                             "conversion actions.",
                             json_schema_extra=pattern(GOOGLE_CUSTOMER_ID_PATTERN))
    login_customer_id: str | None = Field(
        default=None, alias="loginCustomerId", exclude_if=lambda v: v is None,
        description="Manager account the token acts through, when not the customer itself.",
        json_schema_extra=pattern(GOOGLE_CUSTOMER_ID_PATTERN))
    access_token: SecretRef = Field(alias="accessToken",
                                    description="OAuth access token: {env: NAME} or "
                                    "{file: PATH}, never the token itself.")
    click_id_properties: GoogleClickIds = Field(
        default_factory=GoogleClickIds, alias="clickIdProperties",
        description="Contact properties holding the click ids.")
    consent: GoogleConsent = Field(default_factory=GoogleConsent,
                                   description="Default consent sent with each event.")


class DataProcessingOptions(StrictModel):
    """Meta's Limited Data Use: sent with every event as data_processing_options,
    data_processing_options_country and data_processing_options_state (E115)."""

    options: list[str] = Field(
        description="[] (no restriction, stated explicitly) or [LDU] (Limited Data Use).")
    country: int | None = Field(
        default=None, description="With LDU: 1 (United States) or 0 (Meta geolocates the "
        "event); omitted with state: Meta geolocates.")
    state: int | None = Field(
        default=None, description="With LDU: 1000 (California) or 0 (Meta geolocates).")


class AccountSpec(StrictModel):
    portal_id: int = Field(alias="portalId", gt=0, le=MAX_PORTAL_ID,
                           description="CRM account (portal) id, 1 to 2**53 - 1.")
    tier: Literal["professional", "enterprise"] = Field(
        description="Subscription tier: professional allows 50 lifecycle-stage events, "
        "enterprise 100 (R9).")
    lead_sync: bool = Field(default=False, alias="leadSync",
                            description="Meta lead sync is on; required for Meta lifecycle events "
                            "(R5), not for LinkedIn or Google Ads ones.")
    sync_web_conversions: bool = Field(
        default=True, alias="syncWebConversions",
        description="Account setting 'sync web conversions to ads'; false is a warning (R17).")
    default_country_code: str | None = Field(
        default=None, alias="defaultCountryCode",
        description="Calling code used to complete phone numbers without one, e.g. \"1\".",
        json_schema_extra=pattern(COUNTRY_CODE_PATTERN))
    # The two fields below are not dumped when unset: an account's document and fingerprint
    # stay what they were before the fields existed (saved plans stay valid across upgrades).
    date_order: Literal["mdy", "dmy", "ymd"] | None = Field(
        default=None, alias="dateOrder", exclude_if=lambda v: v is None,
        description="Order of day and month in the CRM's dates of birth when both could be "
        "either (mdy: 02/03/1990 is February 3); default: the region of defaultCountryCode.")
    data_processing_options: DataProcessingOptions | None = Field(
        default=None, alias="dataProcessingOptions", exclude_if=lambda v: v is None,
        description="Meta's Limited Data Use for every Meta event of the account (events may "
        "override); needs a facebook block.")
    custom_lifecycle_stages: list[CustomStage] = Field(
        default_factory=list, alias="customLifecycleStages",
        description="The account's custom lifecycle stages (R6).")
    forms: list[Form] = Field(default_factory=list,
                              description="Forms that exist in the CRM account (R12).")
    # At least one network block (rules.py, E120). The new blocks are not dumped when unset,
    # so an existing account's document and fingerprint stay what they were.
    facebook: Facebook | None = Field(default=None, exclude_if=lambda v: v is None,
                                      description="Meta setup of the account.")
    linkedin: LinkedIn | None = Field(default=None, exclude_if=lambda v: v is None,
                                      description="LinkedIn setup of the account.")
    google: Google | None = Field(default=None, exclude_if=lambda v: v is None,
                                  description="Google Ads setup of the account.")

    @property
    def meta(self) -> Facebook:
        """The Meta block, for what only Meta events use (validation makes a Meta event's
        account have one: E128)."""
        if self.facebook is None:
            raise ValueError("the account has no facebook block")
        return self.facebook


class Account(StrictModel):
    api_version: Literal["convctl/v1"] = Field(alias="apiVersion", description="Always convctl/v1.")
    kind: Literal["Account"] = Field(description="Account: one CRM account and its ad network "
                                     "setup (Meta, LinkedIn, Google Ads).")
    metadata: Metadata = Field(description="Name and labels.")
    spec: AccountSpec = Field(description="The account's settings.")

    @property
    def name(self) -> str:
        return self.metadata.name

    def stage_ids(self) -> set[str]:
        from reconciler.core.vocabulary import STANDARD_STAGES

        return set(STANDARD_STAGES) | {s.id for s in self.spec.custom_lifecycle_stages}


class Money(StrictModel):
    amount: float = Field(description="Positive amount, at most 10**12 (R13).",
                          json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_AMOUNT})
    currency: str = Field(description="ISO 4217 currency code, e.g. EUR (R13).",
                          json_schema_extra=pattern(CURRENCY_PATTERN))


class Consent(StrictModel):
    property: str = Field(description="Contact property recording consent (R14).")
    value: str = Field(description="The value of that property that means 'consented' (R14).")


class FormSubmission(StrictModel):
    form_id: str = Field(alias="formId", description="Id of one of the account's forms (R12).")
    facebook_event: str | None = Field(
        default=None, alias="facebookEvent", exclude_if=lambda v: v is None,
        description="Meta events only, required there: a standard Meta event (Lead, "
        "CompleteRegistration, ...) or custom:<EventName> (R13).")
    value: Money | None = Field(default=None, description="Optional conversion value (R13).")
    predictive_lead_score: bool = Field(
        default=False, alias="predictiveLeadScore",
        description="Send the CRM's predictive lead score (R13).")
    consent: Consent | None = Field(default=None,
                                    description="Consent property and value; required (R14).")


class LifecycleStageChange(StrictModel):
    stages: list[str] = Field(description="Lifecycle stages that fire the event; each counts "
                              "one toward the tier limit (R6, R7).")
    contacts: Literal["all", "adInteractions"] = Field(
        default="all",
        description="all contacts (Meta: with a lead id), or only those that interacted with "
        "Meta ads (adInteractions: Meta events only) (R8).")


class Trigger(StrictModel):
    form_submission: FormSubmission | None = Field(
        default=None, alias="formSubmission", description="Fire on a form submission.")
    lifecycle_stage_change: LifecycleStageChange | None = Field(
        default=None, alias="lifecycleStageChange",
        description="Fire when a contact moves into a lifecycle stage.")

    @property
    def kind(self) -> str:
        return "formSubmission" if self.form_submission is not None else "lifecycleStageChange"


class PropertyMapping(StrictModel):
    property: str = Field(description="CRM contact property name.")
    as_: str = Field(alias="as", description="Meta user_data key it is sent as.")


class DataSharing(StrictModel):
    properties: list[Annotated[str | PropertyMapping, Field(union_mode="left_to_right")]] = Field(
        default_factory=list,
        description="Contact properties sent to Meta (R15); email is strongly recommended.")
    ip_address: bool = Field(default=True, alias="ipAddress",
                             description="Send the visitor's IP address; may be removed (R15).")
    user_agent: bool = Field(default=True, alias="userAgent",
                             description="Always sent; cannot be switched off (R15).")
    action_source: bool = Field(default=True, alias="actionSource",
                                description="Always sent; cannot be switched off (R15).")
    event_source_url: bool = Field(default=True, alias="eventSourceUrl",
                                   description="Always sent; cannot be switched off (R15).")

    def property_names(self) -> list[str]:
        return [p if isinstance(p, str) else p.property for p in self.properties]


class EventSpec(StrictModel):
    account: str = Field(description="Name of the Account this event belongs to.")
    # The network and its target. Not dumped when unset, so a Meta event's content hash stays
    # what it was before networks existed; exactly the target of the network is given (E121).
    network: Literal["meta", "linkedin", "google"] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="The ad network the event is sent to (R1): meta (the default), linkedin "
        "or google.")
    ad_account: str | None = Field(default=None, alias="adAccount",
                                   exclude_if=lambda v: v is None,
                                   description="Meta (no network, the default): one of the "
                                   "account's ad accounts.")
    conversion_rule: str | None = Field(
        default=None, alias="conversionRule", exclude_if=lambda v: v is None,
        description="LinkedIn: the conversion rule, urn:lla:llaPartnerConversion:<digits>.",
        json_schema_extra=pattern(LINKEDIN_CONVERSION_RULE_PATTERN))
    conversion_action: str | None = Field(
        default=None, alias="conversionAction", exclude_if=lambda v: v is None,
        description="Google: the conversion action's id in the account's customer.",
        json_schema_extra=pattern(GOOGLE_CONVERSION_ACTION_PATTERN))
    enabled: bool = Field(default=True, description="The sync toggle (R19).")
    protect: bool = Field(default=False,
                          description="true: plan refuses to delete or replace this event.")
    trigger: Trigger = Field(description="Exactly one trigger (R1).")
    data_sharing: DataSharing = Field(default_factory=DataSharing, alias="dataSharing",
                                      description="What is sent to the network (R15).")
    # Not dumped when unset, so an event's content hash (drift, R19) stays what it was before
    # the field existed.
    data_processing_options: DataProcessingOptions | None = Field(
        default=None, alias="dataProcessingOptions", exclude_if=lambda v: v is None,
        description="Meta's Limited Data Use for this event (Meta events only); overrides "
        "the account's.")

    @property
    def destination(self) -> str:
        """The network the event goes to: ``network``, Meta when unset."""
        return self.network or "meta"

    @property
    def target(self) -> str | None:
        """The network's own target of the event (Meta: the ad account; the pixel is the
        account's)."""
        if self.destination == "linkedin":
            return self.conversion_rule
        if self.destination == "google":
            return self.conversion_action
        return self.ad_account


class ConversionEvent(StrictModel):
    api_version: Literal["convctl/v1"] = Field(alias="apiVersion", description="Always convctl/v1.")
    kind: Literal["ConversionEvent"] = Field(description="ConversionEvent: one conversion event.")
    metadata: Metadata = Field(description="Name, labels, renamedFrom.")
    spec: EventSpec = Field(description="The event's settings.")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.spec.account, self.metadata.name)

    @property
    def stage_count(self) -> int:
        """Quota use (R7): one per selected stage of a lifecycle event, 0 for forms."""
        lc = self.spec.trigger.lifecycle_stage_change
        return len(set(lc.stages)) if lc is not None else 0


KINDS: dict[str, type[StrictModel]] = {"Account": Account, "ConversionEvent": ConversionEvent}
