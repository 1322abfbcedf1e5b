"""Options shared by several commands (each names its environment variable)."""

from __future__ import annotations

import re
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


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+|[0-9]+(?:\.[0-9]+)?")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?")
MAX_DURATION_SECONDS = 7 * 24 * 3600.0


class Duration(click.ParamType[float, Any]):
    """``30s``, ``5m``, ``1h30m``, ``250ms`` or a bare number of seconds -> seconds (float)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            text = str(value).strip()
            if not _DURATION.fullmatch(text):
                self.fail(f"'{value}' is not a duration; use e.g. 30s, 5m, 1h30m or 0", param,
                          ctx)
            seconds = sum(float(num) * _UNITS[unit or "s"] for num, unit in _PART.findall(text))
        if not 0 <= seconds <= MAX_DURATION_SECONDS:
            self.fail(f"'{value}' is out of range (0 to 168h)", param, ctx)
        return seconds
