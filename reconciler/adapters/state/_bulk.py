"""Building large listings of live events quickly (both SQL backends)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_ROWS = 2_000  # listings at least this long run with the cyclic collector paused


@contextmanager
def bulk_gc(rows: int) -> Iterator[None]:
    """Pause the cyclic collector while a large listing is built (the models hold no cycles;
    left on, it rescans the growing heap many times), and freeze the result afterwards."""
    if rows < BULK_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
