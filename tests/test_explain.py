"""``convctl explain``: every diagnostic code the code base can emit, every code in README's
table and every rule R1-R19 has an explanation shipped in the package (issue 12 item 6)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from serverkit import convctl

from reconciler.cli.explain import explanation, sections

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"[EW]\d{3}")


def emitted_codes() -> set[str]:
    """Every string constant shaped like a diagnostic code in the package's source."""
    found: set[str] = set()
    for path in (ROOT / "reconciler").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and CODE.fullmatch(node.value):
                found.add(node.value)
    return found


def readme_codes() -> set[str]:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines()
            if re.match(r"\| [EW]\d{3}", line)]
    return {code for row in rows for code in CODE.findall(row.split("|")[1])}


def test_every_code_and_rule_is_explained() -> None:
    codes = emitted_codes()
    assert len(codes) > 40 and {"E313", "W301", "E001"} <= codes
    explained = set(sections("codes.md"))
    assert codes <= explained, sorted(codes - explained)
    assert readme_codes() <= explained, sorted(readme_codes() - explained)
    assert set(sections("rules.md")) == {f"R{i}" for i in range(1, 20)}
    for code in sorted(explained | set(sections("rules.md"))):
        assert len(explanation(code)) > 30, code


def test_a_code_brings_the_rules_it_cites() -> None:
    text = explanation("e313")
    assert text.startswith("E313: ") and "\n\nR7: " in text and "\n\nR9: " in text
    assert "Professional at most 50" in text


def test_the_rules_reference_ships_with_the_package_and_no_doc_links_outside() -> None:
    packaged = ROOT / "reconciler" / "help" / "rules.md"
    assert packaged.read_text() == (ROOT / "docs" / "rules.md").read_text()
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert "../shared" not in doc.read_text(), doc


def test_without_a_code_every_code_and_rule_is_listed() -> None:
    done = convctl("explain")
    assert done.returncode == 0
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert set(listed) == set(sections("codes.md")) | set(sections("rules.md"))
    assert "E313  The account would use more lifecycle-stage slots than its tier allows" \
        in done.stdout


@pytest.mark.parametrize(("args", "code", "start"), [
    (("explain", "W301"), 0, "W301: The event does not share email"),
    (("explain", "R19"), 0, "R19: Events can be listed"),
    (("explain", "E999"), 1, "error: unknown code 'E999'"),
])
def test_the_command(args: tuple[str, ...], code: int, start: str) -> None:
    done = convctl(*args)
    assert done.returncode == code
    assert (done.stdout or done.stderr).startswith(start)
    if code:
        assert done.stderr.count("\n") == 1
