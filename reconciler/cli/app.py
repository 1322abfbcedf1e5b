"""Where every command's output goes: data to stdout, diagnostics and progress to stderr."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

import click


def _color_ok(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and stream.isatty()


@dataclass
class App:
    """Output sink shared by the commands; colour only on a TTY and never with NO_COLOR."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def color(self) -> bool:
        return _color_ok(self.stdout)

    def out(self, text: str = "") -> None:
        click.echo(text, file=self.stdout)

    def err(self, text: str = "") -> None:
        click.echo(text, file=self.stderr)

    def style_err(self, text: str, **styles: object) -> str:
        return click.style(text, **styles) if _color_ok(self.stderr) else text  # type: ignore[arg-type]
