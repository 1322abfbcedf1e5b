"""Exit without freeing what a big command built: the process ends, the OS takes the memory back.

A 10,000-event plan builds a few hundred thousand long-lived objects (parsed data, positions,
models, live events); freeing them one by one when the command returns cost about 80 ms, a tenth
of the whole plan. ``convctl`` (``main``, the real process only) calls ``enable``; a command then
``keep``s what it built, and ``exit`` ends the process with ``os._exit`` once stdout and stderr
are flushed, so nothing kept is ever freed. Under ``CliRunner`` (tests) nothing is enabled: kept
objects are not held and the exit is the usual ``sys.exit``. No command that keeps anything may
rely on ``atexit`` handlers (plan and validate do not: they close their state themselves).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn

_kept: list[object] | None = None


def enable() -> None:
    """Hold what commands ``keep`` until ``exit`` (the real ``convctl`` process only)."""
    global _kept
    _kept = []


def keep(*objects: object) -> None:
    """Never free ``objects``: ``exit`` ends the process with them still alive."""
    if _kept is not None:
        _kept.extend(objects)


def pause_collector() -> None:
    """Turn the cyclic garbage collector off for the rest of the process (the real ``convctl``
    only, like ``keep``): plan and validate build data that holds no cycles, end with ``exit``
    and free nothing, so the collector's runs over the objects the imports, the load and the
    planner allocate (about 2% of a 10,000-event plan) find nothing to collect."""
    if _kept is not None:
        gc.disable()


def exit(code: int) -> NoReturn:
    """End the process with ``code``: at once when something is kept, else as ``sys.exit``."""
    if _kept:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe or a full disk: the usual exit reports it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)
