"""Manifest rules of LinkedIn and Google Ads events next to Meta's (R1, R5, R8, R9, R16).

The one-mistake cases live in tests/data/broken/ (e121-e128, e314-e317, w303-w307); these are the
rules that need a date, a count or an acceptance.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from reconciler.adapters.manifests import load
from reconciler.core import models, rules, validate
from reconciler.core.source import RawDocument, SourceMap
from reconciler.diagnostics import Diagnostics

STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
          "customer", "evangelist")
TARGET = {"meta": "adAccount: act_1234567890",
          "linkedin": "network: linkedin\n  conversionRule: urn:lla:llaPartnerConversion:{n}",
          "google": 'network: google\n  conversionAction: "{n}"'}


def account(tier: str = "professional", lead_sync: str = "true", version: str = "") -> str:
    pinned = f'    version: "{version}"\n' if version else ""
    return f"""\
apiVersion: convctl/v1
kind: Account
metadata:
  name: acme
spec:
  portalId: 4412345
  tier: {tier}
  leadSync: {lead_sync}
  forms:
    - {{id: f-1, name: Demo request}}
  facebook:
    businessId: "1122334455"
    pixelId: "123456789012345"
    adAccounts: [act_1234567890]
    accessToken: {{env: ACME_META_TOKEN}}
  linkedin:
    adAccount: urn:li:sponsoredAccount:5123
    accessToken: {{env: ACME_LINKEDIN_TOKEN}}
{pinned}  google:
    customerId: "1234567890"
    accessToken: {{env: ACME_GOOGLE_TOKEN}}
"""


def lifecycle(name: str, network: str, stages: tuple[str, ...], n: int = 1) -> str:
    return f"""\
apiVersion: convctl/v1
kind: ConversionEvent
metadata:
  name: {name}
spec:
  account: acme
  {TARGET[network].format(n=n)}
  trigger:
    lifecycleStageChange:
      stages: [{", ".join(stages)}]
  dataSharing:
    properties: [email]
"""


def form(name: str, network: str, n: int = 1) -> str:
    meta = "      facebookEvent: Lead\n" if network == "meta" else ""
    return f"""\
apiVersion: convctl/v1
kind: ConversionEvent
metadata:
  name: {name}
spec:
  account: acme
  {TARGET[network].format(n=n)}
  trigger:
    formSubmission:
      formId: f-1
{meta}      consent: {{property: consent, value: "yes"}}
  dataSharing:
    properties: [email]
"""


def findings(tmp_path: Path, *docs: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text("---\n".join(docs), encoding="utf-8")
    _, diags = load([path])
    return [d.code for d in diags.sorted()]


@pytest.mark.parametrize("network", ["meta", "linkedin", "google"])
def test_an_event_of_each_network_is_valid(tmp_path: Path, network: str) -> None:
    assert findings(tmp_path, account(), form("demo", network),
                    lifecycle("won", network, ("customer",), n=2)) == []


def test_lead_sync_is_required_for_meta_lifecycle_events_only(tmp_path: Path) -> None:
    """R5 is Meta's: LinkedIn and Google match by identifiers, not a Meta lead id."""
    base = account(lead_sync="false")
    assert findings(tmp_path, base, lifecycle("li", "linkedin", ("customer",)),
                    lifecycle("g", "google", ("customer",))) == []
    assert findings(tmp_path, base, lifecycle("m", "meta", ("customer",))) == ["E302"]


def test_the_same_conversion_on_two_networks_or_accounts_is_not_a_duplicate(
        tmp_path: Path) -> None:
    """R16 refuses one conversion rule/action twice in one account (E317), nothing else."""
    assert findings(tmp_path, account(), form("li", "linkedin", n=7),
                    form("g", "google", n=7)) == []
    assert findings(tmp_path, account(), form("a", "google", n=7),
                    form("b", "google", n=7)) == ["E317"]


def _dated(version: str, today: date) -> list[str]:
    diags = Diagnostics()
    docs = [RawDocument(yaml.safe_load(account(version=version)), SourceMap("<a>"))]
    rules.check(validate.build(docs, diags), diags, secrets_dir=None, today=today)
    return [d.code for d in diags.sorted()]


@pytest.mark.parametrize(("version", "expected"), [
    ("202611", []), ("202602", []), ("202601", ["W305"]), ("202512", ["W305"]),
    ("202511", ["E123"]), ("202001", ["E123"]), ("202612", ["E123"]), ("209901", ["E123"]),
    ("202613", ["E123"]), ("2026-11", ["E123"]),
])
def test_linkedin_version_is_at_most_a_year_old_and_not_in_the_future(
        version: str, expected: list[str]) -> None:
    """LinkedIn serves a version for 12 months: older is refused, the last two months warn."""
    assert _dated(version, date(2026, 11, 30)) == expected


@pytest.mark.parametrize("version", ["", models.DEFAULT_LINKEDIN_VERSION])
def test_the_default_linkedin_version_is_never_dated(version: str) -> None:
    """The default moves with convctl releases: unset or pinned to it, it is never refused (a
    write through the API dumps the default as if the manifest had pinned it)."""
    assert _dated(version, date(2031, 1, 1)) == []


@pytest.mark.parametrize("tier", ["professional", "enterprise"])
def test_lifecycle_events_of_every_network_share_the_tier_limit(
        tmp_path: Path, tier: str) -> None:
    """R9 is the CRM's limit: each network's lifecycle stages use the same slots (R7)."""
    limit = {"professional": 50, "enterprise": 100}[tier]
    docs, used, i = [account(tier=tier)], 0, 0
    networks = ("meta", "linkedin", "google")
    while used < limit:
        take = min(len(STAGES), limit - used)
        docs.append(lifecycle(f"ev-{i}", networks[i % 3], STAGES[:take], n=i + 1))
        used, i = used + take, i + 1
    assert findings(tmp_path, *docs) == []
    docs.append(lifecycle("one-more", "google", ("lead",), n=999))
    assert findings(tmp_path, *docs) == ["E313"]


ROOT = Path(__file__).resolve().parents[2]


def _schema_errors(path: Path) -> int:
    import json

    import jsonschema

    schema = json.loads((ROOT / "schemas" / "convctl.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return sum(len(list(validator.iter_errors(d))) for d in docs)


@pytest.mark.parametrize("name", ["account.yaml", "events.yaml"])
def test_the_example_fits_the_json_schema(name: str) -> None:
    assert _schema_errors(ROOT / "examples" / "networks" / name) == 0


@pytest.mark.parametrize("case", [
    "e120-no-network", "e121-target-of-another-network", "e102-linkedin-without-conversion-rule",
    "e102-meta-event-without-ad-account", "e102-meta-form-without-facebook-event",
    "e314-facebook-event-on-linkedin", "e315-ldu-on-google-event",
    "e316-ad-interactions-on-linkedin"])
def test_editors_see_the_network_rules_in_the_json_schema(case: str) -> None:
    """The schema's per-network conditions flag what validate refuses (validate has positions)."""
    assert _schema_errors(ROOT / "tests" / "data" / "broken" / f"{case}.yaml") == 1
