"""schemas/ is generated from the models; shipped manifests validate against it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.core.schema import schema_files

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
SHIPPED = sorted((REPO / "manifests").rglob("*.yaml"))
MODELINE = "# yaml-language-server: $schema="


def test_committed_schemas_equal_the_models() -> None:
    generated = schema_files()
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(generated)
    for name, text in generated.items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text, (
            f"schemas/{name} is stale: run `convctl schema`")


def test_schema_check_passes_then_fails_after_tampering(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["schema", "--check", "--dir", str(SCHEMAS)])
    assert ok.exit_code == 0, ok.output
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    target = copy / "account.schema.json"
    data = json.loads(target.read_text())
    data["title"] = "tampered"
    target.write_text(json.dumps(data, indent=2))
    bad = runner.invoke(cli, ["schema", "--check", "--dir", str(copy)])
    assert bad.exit_code == 1
    assert "account.schema.json" in bad.stderr
    assert json.loads(target.read_text())["title"] == "tampered"  # --check writes nothing


def test_schema_writes_missing_files(tmp_path: Path) -> None:
    out = tmp_path / "fresh"
    result = CliRunner().invoke(cli, ["schema", "--dir", str(out)])
    assert result.exit_code == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == schema_files()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.relative_to(REPO).as_posix() for p in SHIPPED])
def test_shipped_documents_validate_against_the_combined_schema(path: Path) -> None:
    schema = json.loads((SCHEMAS / "convctl.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert errors == []


def test_schema_rejects_an_unknown_field() -> None:
    schema = json.loads((SCHEMAS / "convctl.schema.json").read_text())
    doc = yaml.safe_load((REPO / "manifests" / "acme" / "account.yaml").read_text())
    doc["spec"]["leadSynk"] = True
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.relative_to(REPO).as_posix() for p in SHIPPED])
def test_shipped_files_point_editors_at_the_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(MODELINE)
    target = (path.parent / first[len(MODELINE):].strip()).resolve()
    assert target == (SCHEMAS / "convctl.schema.json").resolve()
    assert target.is_file()


def _undescribed(node: object, path: str) -> list[str]:
    """Every property (at any depth, in any definition) that has no description."""
    missing: list[str] = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            if not (isinstance(prop, dict) and prop.get("description", "").strip()):
                missing.append(f"{path}.{name}")
        for key, value in node.items():
            if key == "properties":  # a map of field schemas, not a schema itself
                for name, prop in value.items():
                    missing.extend(_undescribed(prop, f"{path}.{name}"))
            elif key in ("allOf", "anyOf") and path.endswith(("/EventSpec", "/AccountSpec")):
                continue  # the per-network conditions constrain fields described above
            else:
                missing.extend(_undescribed(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for item in node:
            missing.extend(_undescribed(item, path))
    return missing


def test_every_model_field_has_a_description() -> None:
    """Issue 2 item 2 / architecture rule 11: descriptions feed the schema and the reference."""
    generated = schema_files()
    properties = sum(text.count('"description"') for text in generated.values())
    assert properties > 50
    for name, text in generated.items():
        assert _undescribed(json.loads(text), name) == [], name


def test_schema_check_without_a_schemas_folder_says_missing(tmp_path: Path) -> None:
    """Issue 12: it said the files "differ" when there were none."""
    result = CliRunner().invoke(cli, ["schema", "--check", "--dir", str(tmp_path / "schemas")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {(tmp_path / 'schemas').as_posix()}/")
    assert " missing; run `convctl schema` and commit the result" in result.stderr
    assert "differ" not in result.stderr
    assert not (tmp_path / "schemas").exists()
