"""JSON Schema of the manifests, generated from the models (editors, CI, docs).

Beside the models' shapes it carries the per-network rules an editor can check (R1,
docs/networks.md): an account has at least one network block (E120); an event names its
network's target and no other (E121, E102), Meta's form events a ``facebookEvent`` and other
networks' none (E314), and only Meta events set ``dataProcessingOptions`` (E315) or
``contacts: adInteractions`` (E316). ``convctl validate`` checks them all, with positions.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.core.models import Account, ConversionEvent
from reconciler.core.network_rules import TARGETS

SCHEMA_ID = "https://convctl.dev/schemas/"


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _network_case(network: str) -> dict[str, Any]:
    """``if`` the event is ``network``'s, ``then`` its target and options."""
    if network == "meta":
        when: dict[str, Any] = {"anyOf": [{"not": {"required": ["network"]}},
                                          {"properties": {"network": {"enum": ["meta", None]}}}]}
    else:
        when = {"required": ["network"], "properties": {"network": {"const": network}}}
    others = [{"required": [key]} for net, key in TARGETS.items() if net != network]
    then: dict[str, Any] = {"required": [TARGETS[network]], "not": {"anyOf": others}}
    form = ({"required": ["facebookEvent"]} if network == "meta"
            else {"not": {"required": ["facebookEvent"]}})
    trigger: dict[str, Any] = {"formSubmission": form}
    if network != "meta":
        trigger["lifecycleStageChange"] = {
            "properties": {"contacts": {"not": {"const": "adInteractions"}}}}
        then["not"]["anyOf"].append({"required": ["dataProcessingOptions"]})
    then["properties"] = {"trigger": {"properties": trigger}}
    return {"if": when, "then": then}


def _with_network_rules(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema["$defs"]
    if "AccountSpec" in defs:
        defs["AccountSpec"]["anyOf"] = [{"required": [block]}
                                        for block in ("facebook", "linkedin", "google")]
    if "EventSpec" in defs:
        defs["EventSpec"]["allOf"] = [_network_case(network) for network in TARGETS]
    return schema


def schema_files() -> dict[str, str]:
    """File name -> JSON text, for every kind and for the combined multi-kind schema."""
    files: dict[str, str] = {}
    for name, model in (("account", Account), ("conversion-event", ConversionEvent)):
        schema = _with_network_rules(model.model_json_schema(by_alias=True))
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{SCHEMA_ID}{name}.schema.json"
        files[f"{name}.schema.json"] = _dump(schema)
    either: TypeAdapter[Any] = TypeAdapter(
        Annotated[Account | ConversionEvent, Field(discriminator="kind")])
    combined = _with_network_rules(either.json_schema(by_alias=True))
    combined["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    combined["$id"] = f"{SCHEMA_ID}convctl.schema.json"
    combined["title"] = "convctl manifest (Account or ConversionEvent)"
    files["convctl.schema.json"] = _dump(combined)
    return files
