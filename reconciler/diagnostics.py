"""Diagnostics: user mistakes reported with a source position, a stable code and an R-rule.

A diagnostic is data, never an exception (architecture rule 4). Every check of a run adds to one
``Diagnostics`` collection so the user sees all problems at once, sorted by file and position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A 1-based position in a manifest file (``line``/``col`` 0 when unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


@dataclass(frozen=True)
class Diagnostic:
    """One finding: ``path:line:col: error[E201]: message (R12)``."""

    severity: Severity
    code: str
    message: str
    location: SourceLocation | None = None
    rule: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        rule = f" ({self.rule})" if self.rule else ""
        return f"{where}{self.severity.value}[{self.code}]: {self.message}{rule}"

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "rule": self.rule,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
        }

    def _sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location or SourceLocation("")
        return (loc.file, loc.line, loc.col, self.code)


@dataclass
class Diagnostics:
    """An ordered, growing collection of diagnostics."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(
        self, code: str, message: str, location: SourceLocation | None = None,
        rule: str | None = None,
    ) -> None:
        self.items.append(Diagnostic(Severity.ERROR, code, message, location, rule))

    def warning(
        self, code: str, message: str, location: SourceLocation | None = None,
        rule: str | None = None,
    ) -> None:
        self.items.append(Diagnostic(Severity.WARNING, code, message, location, rule))

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if not d.is_error]

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=Diagnostic._sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
