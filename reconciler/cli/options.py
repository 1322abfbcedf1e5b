"""Options shared by several commands (each names its environment variable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STATE = "sqlite:///.convctl/state.db"


def state_option(func: F) -> F:
    return click.option(
        "--state", "state", envvar="CONVCTL_STATE", default=None, metavar="URL",
        help=f"Live state: sqlite:///PATH, postgresql://USER@HOST[:PORT]/DB or "
        f"http(s)://HOST:PORT [env CONVCTL_STATE; default "
        f"{DEFAULT_STATE}].")(func)


def manifests_argument(func: F) -> F:
    return click.argument("paths", nargs=-1, type=click.Path())(func)
