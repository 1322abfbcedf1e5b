"""The manifest reference in docs/ is generated from the models and cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.core.reference import REFERENCE_PATH, reference_markdown, rows

REPO = Path(__file__).resolve().parents[1]


def test_docs_reference_is_up_to_date() -> None:
    current = (REPO / REFERENCE_PATH).read_text(encoding="utf-8")
    assert current == reference_markdown(), (
        f"{REFERENCE_PATH} is stale: run `convctl schema --reference` and commit it")


def test_every_field_has_a_description() -> None:
    from reconciler.core.reference import KINDS

    for model in KINDS:
        missing = [r.path for r in rows(model.model_json_schema(by_alias=True))
                   if not r.description]
        assert not missing, f"{model.__name__}: add Field(description=...) to {missing}"


def test_rows_flatten_refs_lists_maps_and_optionals() -> None:
    text = reference_markdown()
    for line in [
        "| `spec.trigger.formSubmission.value.amount` | number |  | yes | Positive amount, "
        "at most 10**12 (R13). |",
        "| `spec.dataSharing.properties[].as` | string |  | yes |",
        "| `metadata.labels` | map of string |  | no |",
        "| `spec.trigger.lifecycleStageChange.contacts` | `\"all\"` or `\"adInteractions\"` "
        "| `\"all\"` | no |",
        "| `spec.tier` | `\"professional\"` or `\"enterprise\"` |  | yes |",
    ]:
        assert line in text
    assert "custom:\\<EventName\\>" in text  # no raw HTML in the rendered table


def test_recursive_and_nested_schemas() -> None:
    schema = {"title": "Node", "type": "object", "required": ["name"],
              "properties": {"name": {"type": "string", "description": "a | b"},
                             "child": {"$ref": "#/$defs/Node", "description": "Another node."},
                             "tags": {"type": "object",
                                      "additionalProperties": {"$ref": "#/$defs/Tag"}}},
              "$defs": {"Tag": {"type": "object", "properties": {"v": {"type": "integer",
                                                                       "default": 3}}}}}
    schema["$defs"]["Node"] = schema  # type: ignore[index]
    got = [(r.path, r.type, r.default, r.required) for r in rows(schema)]
    assert got == [("name", "string", "", True),
                   ("child", "object", "", False),  # the recursive model is listed once
                   ("tags", "map of object", "", False), ("tags.<key>.v", "integer", "3", False)]
    assert "a \\| b" in reference_markdown([schema])


@pytest.mark.parametrize("stale", [False, True])
def test_schema_reference_writes_and_checks(stale: bool, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["schema", "--reference"]).exit_code == 0
    target = tmp_path / REFERENCE_PATH
    assert target.read_text(encoding="utf-8") == reference_markdown()
    if stale:
        target.write_text("old\n", encoding="utf-8")
    result = runner.invoke(cli, ["schema", "--reference", "--check"])
    assert result.exit_code == (1 if stale else 0), result.output
    if stale:
        assert REFERENCE_PATH in result.stderr and "convctl schema --reference" in result.stderr
        assert target.read_text(encoding="utf-8") == "old\n"  # --check writes nothing
