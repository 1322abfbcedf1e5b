"""Facts about processes on this host, for telling a live lock holder from a dead one."""

from __future__ import annotations

import os
from pathlib import Path


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's process counts; a zombie,
    killed but not yet reaped by its parent, does not)."""
    if pid <= 0:
        return True  # not a process id (0 and -1 would name process groups): cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # not ours to signal, or cannot tell: never suggest breaking a live lock
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal check is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
