"""Rule checks of account documents, and the metadata and Limited Data Use checks every document
shares (domain-rules.md R1-R3, R6, R12, R17; the codes are in README "Diagnostic codes").
``rules.check`` runs them over a whole desired state, before the event checks that read each
account."""

from __future__ import annotations

from datetime import date

from reconciler.core import models, network_rules
from reconciler.core.credentials import file_ref_problem, looks_like_secret
from reconciler.core.credentials import shown as _shown
from reconciler.core.models import Account, ConversionEvent, Facebook, SecretRef
from reconciler.core.privacy import check_options
from reconciler.core.source import Located
from reconciler.diagnostics import Diagnostics

is_name = models.whole_match(models.NAME_PATTERN)
_STAGE_ID = models.whole_match(models.STAGE_ID_PATTERN)
_AD_ACCOUNT = models.whole_match(models.AD_ACCOUNT_PATTERN)
_ENV_NAME = models.whole_match(models.ENV_NAME_PATTERN)
_BUSINESS_ID = models.whole_match(models.BUSINESS_ID_PATTERN)
_PIXEL_ID = models.whole_match(models.PIXEL_ID_PATTERN)
_COUNTRY_CODE = models.whole_match(models.COUNTRY_CODE_PATTERN)

AccountDoc = Located[Account]
EventDoc = Located[ConversionEvent]


def check_metadata(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
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


def check_accounts(docs: list[AccountDoc], diags: Diagnostics,
                    secrets_dir: str | None, today: date) -> dict[str, AccountDoc]:
    by_name: dict[str, AccountDoc] = {}
    by_portal: dict[int, AccountDoc] = {}
    for doc in docs:
        check_metadata(doc, diags)
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
    check_data_processing(doc, diags)
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


def check_data_processing(doc: AccountDoc | EventDoc, diags: Diagnostics) -> None:
    """E115: Limited Data Use options as Meta documents them (privacy.py)."""
    options = doc.model.spec.data_processing_options
    if options is not None:
        check_options(options, lambda message, path: diags.error(
            "E115", f"dataProcessingOptions: {message}",
            doc.at("spec", "dataProcessingOptions", *path)))
