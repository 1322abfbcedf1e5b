"""JSON Schema of the manifests, generated from the models (editors, CI, docs)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.core.models import Account, ConversionEvent

SCHEMA_ID = "https://convctl.dev/schemas/"


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """File name -> JSON text, for every kind and for the combined multi-kind schema."""
    files: dict[str, str] = {}
    for name, model in (("account", Account), ("conversion-event", ConversionEvent)):
        schema = model.model_json_schema(by_alias=True)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{SCHEMA_ID}{name}.schema.json"
        files[f"{name}.schema.json"] = _dump(schema)
    either: TypeAdapter[Any] = TypeAdapter(
        Annotated[Account | ConversionEvent, Field(discriminator="kind")])
    combined = either.json_schema(by_alias=True)
    combined["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    combined["$id"] = f"{SCHEMA_ID}convctl.schema.json"
    combined["title"] = "convctl manifest (Account or ConversionEvent)"
    files["convctl.schema.json"] = _dump(combined)
    return files
