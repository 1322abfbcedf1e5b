"""The outcome of the plan policies (``policies/*.rego``): one ``Violation`` per message.

A policy is a Rego package; its ``deny`` (or ``violation``) rules block an apply, its ``warn``
rules and every rule of a package marked advisory only warn. The engine lives in
``adapters/policy.py``; the input document in ``services/policies.py``; see docs/policies.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One message of one policy: ``[convctl.eu_no_ip] event.acme/x: ...``."""

    policy: str  # the Rego package, e.g. convctl.eu_no_ip
    message: str
    advisory: bool = False
    file: str = ""  # where the package is declared, e.g. policies/eu_no_ip.rego

    def render(self) -> str:
        return f"[{self.policy}] {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"policy": self.policy, "message": self.message, "advisory": self.advisory,
                "file": self.file}


def blocking(violations: Sequence[Violation]) -> list[Violation]:
    """The violations that refuse an apply (those of policies not marked advisory)."""
    return [v for v in violations if not v.advisory]
