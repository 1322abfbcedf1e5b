"""Meta as a ``Destination``: ``GraphSender`` (``adapters.meta``) answers as ``Outcome``s.

The events go as they are stored (``GraphSender.send_encoded`` joins their JSON into the body
without parsing it again), with the run's ``test_event_code`` when one is set. Meta's codes are
read here and nowhere else: a 200 whose body counts the events is ``sent`` (with how many Meta
received); ``retry`` answers (5xx, 613, timeouts, ...) are ``retry`` with ``Retry-After``; a
token error (190/102) pauses the target for its token, a permission error (10, 200-299) for
permission; any other refusal rejects the request (delivery splits it to find the bad event).
``code`` is Meta's code as text, with the subcode after a slash (``100/2804050``).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.adapters.meta import GraphSender, SendResult
from reconciler.core.backoff import PERMISSION_CODES
from reconciler.core.models import AccountSpec
from reconciler.core.networks import Outcome


def outcome(result: SendResult) -> Outcome:
    """A classified Graph answer as an ``Outcome``."""
    code = None if result.code is None else (
        f"{result.code}/{result.subcode}" if result.subcode else str(result.code))
    message, status = result.message, result.status
    if result.verdict == "ok":
        return Outcome("sent", message, status, code, received=result.events_received)
    if result.verdict == "retry":
        return Outcome("retry", message, status, code, retry_after=result.retry_after)
    if result.verdict == "token":
        return Outcome("pause", message, status, code, pause_reason="token")
    if result.code in PERMISSION_CODES:
        return Outcome("pause", message, status, code, pause_reason="permission")
    return Outcome("reject", message, status, code)


class MetaDestination:
    """Sends to the Conversions API through ``graph``; closes it on ``close``."""

    network = "meta"

    def __init__(self, graph: GraphSender, test_event_code: str | None = None) -> None:
        self.graph, self.test_event_code = graph, test_event_code

    def send(self, target: str, account: AccountSpec, events: Sequence[bytes],
             token: str) -> Outcome:
        return outcome(self.graph.send_encoded(target, events, token, self.test_event_code))

    def close(self) -> None:
        self.graph.close()
