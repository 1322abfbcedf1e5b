"""Hypothesis properties of the loader: it never crashes, and valid manifests round-trip."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.adapters.manifests import load
from reconciler.adapters.yamlparse import parse_documents
from reconciler.core.models import (
    Account,
    AccountSpec,
    Consent,
    ConversionEvent,
    CustomStage,
    DataSharing,
    EventSpec,
    Facebook,
    Form,
    FormSubmission,
    LifecycleStageChange,
    Metadata,
    Money,
    PropertyMapping,
    SecretRef,
    Trigger,
)
from reconciler.core.vocabulary import (
    META_USER_KEYS,
    PROPERTY_KEYS,
    STANDARD_META_EVENTS,
    STANDARD_STAGES,
)
from reconciler.diagnostics import Diagnostics

_TMP = Path(tempfile.mkdtemp(prefix="convctl-props-"))


def _load_bytes(data: bytes) -> Diagnostics:
    path = _TMP / "case.yaml"
    path.write_bytes(data)
    _, diags = load([path])
    return diags


# --- (a) never raises --------------------------------------------------------------------

@given(st.text(max_size=300))
@example("a: \ud800")  # a lone surrogate: st.text() never draws one
@example("- " * 2000 + "x")  # deeper than libyaml's own limit
@example("a: &a [*a]")  # a recursive alias
def test_parse_documents_never_raises_on_text(text: str) -> None:
    diags = Diagnostics()
    parse_documents(text, "x.yaml", diags)
    assert all(d.location is not None and d.location.file == "x.yaml" for d in diags)


@given(st.text(max_size=300))
def test_load_never_raises_on_text(text: str) -> None:
    diags = _load_bytes(text.encode("utf-8", "surrogatepass"))
    assert all(d.code[0] in "EW" for d in diags)


@given(st.binary(max_size=200))
def test_load_never_raises_on_bytes(data: bytes) -> None:
    _load_bytes(data)


FIELDS = ["apiVersion", "kind", "metadata", "spec", "name", "account", "adAccount", "trigger",
          "formSubmission", "lifecycleStageChange", "stages", "facebook", "accessToken", "env",
          "tier", "portalId", "forms", "id", "consent", "value", "amount", "dataSharing",
          "properties", "as", "property", "customLifecycleStages", "adAccounts"]
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(["convctl/v1", "Account", "ConversionEvent", "acme", "lead",
                              "professional", "act_1"]))
keys = st.sampled_from(FIELDS) | st.text(max_size=8)
trees = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(keys, kids, max_size=5), max_leaves=25)
documents = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["convctl/v1", "v2"]) | scalars,
     "kind": st.sampled_from(["Account", "ConversionEvent"]) | scalars},
    optional={"metadata": trees, "spec": trees})


@given(st.lists(trees | documents, min_size=1, max_size=3))
def test_load_never_raises_on_yaml_trees(docs: list[Any]) -> None:
    text = yaml.safe_dump_all(docs)
    diags = Diagnostics()
    parse_documents(text, "x.yaml", diags)
    _load_bytes(text.encode())


# --- (b) valid manifests round-trip ------------------------------------------------------

name = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
# Line breaks (NEL, LS, PS) and control characters are folded by YAML itself: not ours.
text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1,
               max_size=12)
solid = text.filter(lambda s: s.strip() != "")
digits = st.from_regex(r"[1-9][0-9]{3,9}", fullmatch=True)
# file: references name a file in the secrets folder (/run/secrets by default).
secret_files = st.from_regex(r"/run/secrets/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,19}", fullmatch=True)


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    stage_ids = draw(st.lists(digits, unique=True, max_size=3))
    form_ids = draw(st.lists(solid, unique=True, max_size=3))
    secret = draw(st.one_of(
        st.builds(SecretRef, env=st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)),
        st.builds(SecretRef, file=secret_files)))
    facebook = Facebook(
        businessId=draw(st.from_regex(r"[0-9]{5,20}", fullmatch=True)),
        pixelId=draw(st.from_regex(r"[0-9]{15,16}", fullmatch=True)),
        adAccounts=draw(st.lists(st.from_regex(r"act_[0-9]{1,12}", fullmatch=True),
                                 unique=True, min_size=1, max_size=3)),
        accessToken=secret,
        leadIdProperty=draw(solid), adInteractionProperty=draw(solid))
    spec = AccountSpec(
        portalId=draw(st.integers(1, 2**40)),
        tier=draw(st.sampled_from(["professional", "enterprise"])),
        leadSync=draw(st.booleans()), syncWebConversions=draw(st.booleans()),
        defaultCountryCode=draw(st.none() | st.from_regex(r"[1-9][0-9]{0,2}", fullmatch=True)),
        customLifecycleStages=[CustomStage(id=i, label=draw(text)) for i in stage_ids],
        forms=[Form(id=i, name=draw(text)) for i in form_ids],
        facebook=facebook)
    meta = Metadata(name=draw(name), labels=draw(st.dictionaries(text, text, max_size=2)))
    return Account(apiVersion="convctl/v1", kind="Account", metadata=meta, spec=spec)


@st.composite
def triggers(draw: st.DrawFn, acc: Account) -> Trigger | None:
    kinds = (["form"] if acc.spec.forms else []) + (["lc"] if acc.spec.lead_sync else [])
    if not kinds:
        return None
    if draw(st.sampled_from(kinds)) == "lc":
        stages = draw(st.lists(st.sampled_from(sorted(acc.stage_ids())), unique=True,
                               min_size=1, max_size=4))
        return Trigger(lifecycleStageChange=LifecycleStageChange(
            stages=stages, contacts=draw(st.sampled_from(["all", "adInteractions"]))))
    event = draw(st.sampled_from(STANDARD_META_EVENTS)
                 | st.from_regex(r"custom:[A-Za-z0-9_][A-Za-z0-9_ -]{0,20}", fullmatch=True))
    money = st.builds(Money, amount=st.floats(0.01, 1e9), currency=st.sampled_from(
        ["EUR", "USD", "GBP", "JPY"]))
    return Trigger(formSubmission=FormSubmission(
        formId=draw(st.sampled_from([f.id for f in acc.spec.forms])), facebookEvent=event,
        value=draw(st.none() | money), predictiveLeadScore=draw(st.booleans()),
        consent=Consent(property=draw(solid), value=draw(solid))))


@st.composite
def manifest_sets(draw: st.DrawFn) -> tuple[Account, list[ConversionEvent]]:
    acc = draw(accounts())
    events = []
    mapping = st.builds(lambda prop, key: PropertyMapping(property=prop, **{"as": key}),
                        solid, st.sampled_from(META_USER_KEYS))
    props = st.sampled_from(sorted(PROPERTY_KEYS)) | mapping
    for ev_name in draw(st.lists(name, unique=True, max_size=4)):
        trigger = draw(triggers(acc))
        if trigger is None:
            break
        spec = EventSpec(
            account=acc.name, adAccount=draw(st.sampled_from(acc.spec.facebook.ad_accounts)),
            enabled=draw(st.booleans()), protect=draw(st.booleans()), trigger=trigger,
            dataSharing=DataSharing(properties=draw(st.lists(props, max_size=4)),
                                    ipAddress=draw(st.booleans())))
        meta = Metadata(name=ev_name, renamedFrom=draw(st.none() | name))
        events.append(ConversionEvent(apiVersion="convctl/v1", kind="ConversionEvent",
                                      metadata=meta, spec=spec))
    return acc, events


def _dump(model: Account | ConversionEvent) -> Any:
    data = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data.setdefault("apiVersion", "convctl/v1")  # a Literal field without default: kept anyway
    return data


@given(manifest_sets())
def test_valid_manifests_round_trip(case: tuple[Account, list[ConversionEvent]]) -> None:
    acc, events = case
    text = yaml.safe_dump_all([_dump(acc), *(_dump(e) for e in events)], allow_unicode=True)
    path = _TMP / "valid.yaml"
    path.write_text(text, encoding="utf-8")
    manifests, diags = load([path])
    assert [d.render() for d in diags.errors] == []
    assert [a.model for a in manifests.accounts] == [acc]
    assert [e.model for e in manifests.events] == events
    assert STANDARD_STAGES  # the vocabulary the stages came from is not empty
