"""``--dry-run FILE``: destinations that write instead of sending.

Each request becomes one JSON line appended to FILE: Meta's as before networks,
``{"pixelId": ..., "body": {"data": [...], "test_event_code"?}}``; the other networks'
``{"network": ..., "target": ..., "events": [...]}``. The token a destination is handed is
never written. Every request is answered as fully received. ``requests`` and ``events``
count what was written, over every network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from reconciler.adapters.meta import encoded_body
from reconciler.core.models import AccountSpec
from reconciler.core.networks import Outcome
from reconciler.errors import PermanentError


class DryRunFile:
    """The file a dry run writes; ``destination(network)`` is that network's writer."""

    def __init__(self, path: str | Path, test_event_code: str | None = None) -> None:
        self.path = Path(path)
        self.test_event_code = test_event_code
        self.requests = 0
        self.events = 0

    def destination(self, network: str) -> DryRunDestination:
        return DryRunDestination(self, network)

    def write(self, network: str, target: str, events: Sequence[bytes]) -> None:
        if network == "meta":
            line = b"".join((b'{"pixelId":', orjson.dumps(target), b',"body":',
                             encoded_body(events, None, self.test_event_code), b"}\n"))
        else:
            line = b"".join((b'{"network":', orjson.dumps(network), b',"target":',
                             orjson.dumps(target), b',"events":[', b",".join(events), b"]}\n"))
        try:
            with self.path.open("ab") as out:
                out.write(line)
        except OSError as exc:
            raise PermanentError(f"cannot write the dry-run file {self.path}: "
                                 f"{exc.strerror or exc}") from exc
        self.requests += 1
        self.events += len(events)


class DryRunDestination:
    """One network's requests, written to the dry run's file."""

    def __init__(self, file: DryRunFile, network: str) -> None:
        self.file, self.network = file, network

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome:
        self.file.write(self.network, target, events)
        return Outcome("sent", received=len(events))

    def close(self) -> None:
        """Nothing held open: each request opens the file and closes it."""
