"""``convctl explain CODE``: what a diagnostic code (E313, W301, ...) or a rule (R9) means.

The texts ship with the package (``reconciler/help/codes.md`` and ``rules.md``, the latter a
copy of ``docs/rules.md``), so an installed convctl explains every code it can print. A code's
explanation is followed by the rules it cites.
"""

from __future__ import annotations

import re
from importlib.resources import files

import click

from reconciler.errors import UsageError

_HEADING = re.compile(r"^#{2,3} ([A-Z]\d+)\s*$", re.MULTILINE)
_CITED = re.compile(r"\bR\d{1,2}\b")


def sections(name: str) -> dict[str, str]:
    """``{code: text}`` of one help file (a ``## CODE`` or ``### CODE`` heading per entry)."""
    text = files("reconciler").joinpath("help", name).read_text(encoding="utf-8")
    parts = _HEADING.split(text)
    return {code: body.split("\n## ")[0].strip() for code, body in zip(parts[1::2], parts[2::2],
                                                                          strict=True)}


def explanation(code: str) -> str:
    """The text ``convctl explain`` prints for ``code`` (any case)."""
    key = code.strip().upper()
    codes, rules = sections("codes.md"), sections("rules.md")
    if key in rules:
        return f"{key}: {rules[key]}"
    if key not in codes:
        raise UsageError(f"unknown code {code!r}: diagnostic codes look like E313 or W301 "
                         "(see the table in the README), rules like R9 (R1-R19)")
    cited = dict.fromkeys(_CITED.findall(codes[key]))
    parts = [f"{key}: {codes[key]}", *(f"{rule}: {rules[rule]}" for rule in cited)]
    return "\n\n".join(parts)


def index() -> str:
    """Every code and rule with the first sentence of its explanation."""
    entries = {**sections("codes.md"), **sections("rules.md")}
    return "\n".join(f"{code:<5} {' '.join(text.split()).split('. ')[0].rstrip('.')}"
                     for code, text in entries.items())


@click.command("explain")
@click.argument("code", required=False)
def command(code: str | None) -> None:
    """Explain a diagnostic code (E313, W301, ...) or a rule (R1-R19); without CODE, list
    them all.

    \b
    Examples:
      convctl explain E313
      convctl explain R9
      convctl explain | grep -i consent
    """
    click.echo(explanation(code) if code else index())
