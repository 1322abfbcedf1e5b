"""Progress for long work on a terminal: a spinner, what is being done and the time elapsed,
on stderr, cleared when the work ends.

Shown only when stderr is a terminal, ``--quiet`` is not given, ``CI`` is not set (CI logs are
not terminals, but some runners fake one) and ``TERM`` is not ``dumb``. rich is imported only
then, so commands that show nothing pay nothing for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


def quiet_option(func: Any) -> Any:
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress display (it shows only on a terminal anyway).")(func)


def enabled(quiet: bool = False) -> bool:
    return (not quiet and sys.stderr.isatty() and not os.environ.get("CI")
            and os.environ.get("TERM") != "dumb")


@contextmanager
def working(message: str, *, quiet: bool = False) -> Iterator[None]:
    """Show ``message`` with a spinner and the elapsed time while the block runs."""
    if not enabled(quiet):
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, no_color="NO_COLOR" in os.environ)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        progress.add_task(message, total=None)
        yield
