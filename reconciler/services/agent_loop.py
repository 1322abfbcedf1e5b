"""The agent as a background worker of ``convctl serve``: a thread that never takes the server
down with it.

``Stopper`` is the loop's stop signal and its interruptible ``sleep`` (hand ``stopper.sleep``
to ``open_agent``, so a stop request ends an idle wait at once instead of after the poll
interval). ``AgentLoop.start`` runs ``Agent.run`` in a daemon thread; an exception ends the
cycle, is logged (its type, and for our own errors their one-line message, which by design
holds no token and no contact data) and the loop restarts after a growing delay (1 s doubling
to 60 s). ``stop`` asks the agent to finish its current cycle and joins the thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any

from reconciler.errors import ConvctlError
from reconciler.services.agent import Agent

log = logging.getLogger("reconciler.agent")
RESTART_BASE = 1.0
RESTART_CAP = 60.0


class Stopper:
    """A stop flag whose ``sleep`` wakes up as soon as it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def sleep(self, seconds: float) -> None:
        self._event.wait(max(0.0, seconds))

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def describe(exc: BaseException) -> str:
    """A log line for a failure: our errors' message; for anything else only the type and
    where it was raised (a foreign message may quote data)."""
    if isinstance(exc, ConvctlError):
        return f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


class AgentLoop:
    """Runs one agent in a background thread until ``stop``."""

    def __init__(self, agent: Agent, stopper: Stopper, *, restart_base: float = RESTART_BASE,
                 restart_cap: float = RESTART_CAP) -> None:
        self.agent = agent
        self.stopper = stopper
        self.failures = 0
        self._base, self._cap = restart_base, restart_cap
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name="convctl-agent", daemon=True)
        self._thread.start()
        log.info("agent started")

    def _main(self) -> None:
        delay = self._base
        while not self.stopper.is_set():
            try:
                self.agent.run()
                return  # run() returns only once stopped
            except Exception as exc:  # the server must outlive any agent failure
                self.failures += 1
                log.error("agent cycle failed (%s); restarting in %.0f s", describe(exc), delay)
                self.stopper.sleep(delay)
                delay = min(delay * 2, self._cap)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the current cycle; True when the thread ended within ``timeout``."""
        self.stopper.set()
        self.agent.stop()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        stopped = not thread.is_alive()
        if stopped:
            log.info("agent stopped")
        else:
            log.warning("agent still busy after %.0f s; leaving it behind", timeout)
        return stopped

    def status(self) -> dict[str, Any]:
        """The agent's status (store counts, paused and held-off targets) and the loop's."""
        data = self.agent.status().as_json()
        data["loop"] = {"running": self.running, "failures": self.failures}
        return data
