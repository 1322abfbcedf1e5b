"""docs/backfill.md is true (issue 12 item 5): every example line ingests, every documented
time format parses (and the refused ones are refused), the example session prints what the
page shows, and ``agent ingest --help`` points to the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from serverkit import convctl

from reconciler.core.crm import CrmParseError, parse_jsonl_line

DOC = Path(__file__).resolve().parent.parent / "docs" / "backfill.md"
TEXT = DOC.read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", TEXT, re.DOTALL)


def test_every_example_line_parses_and_every_type_is_shown() -> None:
    lines = [line for block in blocks("json") for line in block.splitlines() if line]
    kinds = {type(parse_jsonl_line(line)).__name__ for line in lines}
    assert kinds == {"Contact", "StageChange", "FormSubmission"}
    for kind in ("contact", "lifecycleStageChange", "formSubmission"):
        assert f"## `{kind}`" in TEXT


ACCEPTED = re.findall(r"`(\d{4}-\d{2}-\d{2}[T ][^`]*(?:Z|[+-]\d{2}:\d{2}))`", TEXT)
NUMBERS = re.findall(r"\(`(\d{10,13})`\)", TEXT)


@pytest.mark.parametrize("moment", ACCEPTED + NUMBERS)
def test_documented_times_are_accepted(moment: str) -> None:
    value = moment if moment.isdigit() else f'"{moment}"'
    line = ('{"type": "lifecycleStageChange", "portalId": 1, "contactId": "7", "stage": "lead",'
            f' "occurredAt": {value}}}')
    assert parse_jsonl_line(line).occurred_at.tzinfo is not None


@pytest.mark.parametrize("moment", ["2026-11-20T14:03:00", "2026-11-20"])
def test_documented_refusals_are_refused(moment: str) -> None:
    assert f"`{moment}`" in TEXT
    with pytest.raises(CrmParseError, match="Input should have timezone info"):
        parse_jsonl_line('{"type": "lifecycleStageChange", "portalId": 1, "contactId": "7", '
                         f'"stage": "lead", "occurredAt": "{moment}"}}')


def test_the_example_session_prints_what_the_page_shows(tmp_path: Path) -> None:
    [content] = blocks("jsonl")
    [session] = blocks("console")
    (tmp_path / "backfill.jsonl").write_text(content, encoding="utf-8")
    done = convctl("agent", "ingest", "backfill.jsonl", "--state",
                   f"sqlite:///{tmp_path / 'state.db'}", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr + done.stdout == session.split("\n", 1)[1]
    assert len(NUMBERS) == 2 and len(ACCEPTED) >= 3


def test_ingest_help_points_to_the_page() -> None:
    shown = convctl("agent", "ingest", "--help").stdout
    assert "docs/backfill.md" in shown and "occurredAt" in shown and "submittedAt" in shown
