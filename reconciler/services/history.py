"""History and audit (issue 14 item 4): append-only records of every change to the state.

``audit`` writes one record (who: ``default_holder`` or, through the control plane, the token
the server names; the git commit from ``CONVCTL_GIT_SHA`` / ``GITHUB_SHA``). ``history`` reads
them back, newest first, for ``convctl history``, ``GET /v1/runs``, ``GET /v1/audit`` and the
dashboard: an apply is one entry per run (its latest outcome, its steps from the journal); a run
whose only record is ``started`` was cut off before it could record an outcome (a crash).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler.core.plan import Plan
from reconciler.core.provider import AuditRecord, Provider
from reconciler.services.locking import default_holder

SCAN_LIMIT = 10_000  # records read to answer one history query


def git_sha() -> str | None:
    return os.environ.get("CONVCTL_GIT_SHA") or os.environ.get("GITHUB_SHA") or None


def plan_hash(plan: Plan) -> str:
    """SHA-256 of the plan's JSON form: the same plan, the same hash."""
    return hashlib.sha256(orjson.dumps(plan.to_json(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def audit(provider: Provider, action: str, outcome: str, *, target: str = "",
          accounts: tuple[str, ...] | None = None, run_id: str | None = None,
          plan: Plan | None = None, detail: str = "", actor: str | None = None
          ) -> AuditRecord:
    """Append one audit record and return it (``actor``: default the OS user; the dashboard
    names its session's token)."""
    record = AuditRecord(id=run_id or uuid.uuid4().hex[:12], at=datetime.now(UTC),
                         actor=actor or default_holder(), action=action, outcome=outcome,
                         target=target, accounts=accounts,
                         plan_hash=plan_hash(plan) if plan else None, git_sha=git_sha(),
                         detail=detail)
    provider.record_audit(record)
    return record


def audit_state(state: str | None, action: str, outcome: str, **fields: Any) -> None:
    """``audit`` on the live state at ``state`` (for commands that hold no provider, e.g.
    token changes, which go to the token store)."""
    from reconciler.adapters.state import open_provider

    provider = open_provider(state)
    try:
        audit(provider, action, outcome, **fields)
    finally:
        provider.close()


@dataclass
class HistoryEntry:
    """One run or one change: its latest record, and (an apply's) journaled steps."""

    record: AuditRecord
    started_at: datetime
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return "interrupted" if self.record.outcome == "started" else self.record.outcome

    def to_json(self) -> dict[str, Any]:
        doc = self.record.model_dump(mode="json")
        doc.update(outcome=self.outcome, started_at=self.started_at.isoformat(),
                   steps=[{**s, "at": s["at"].isoformat()} for s in self.steps])
        return doc


def history(provider: Provider, *, account: str | None = None, limit: int = 20,
            runs_only: bool = False, with_steps: bool = True) -> list[HistoryEntry]:
    """The latest ``limit`` entries, newest first; ``account``: those that touched it (or the
    whole state); ``runs_only``: applies only."""
    entries: dict[str, HistoryEntry] = {}
    for record in provider.audit_log(SCAN_LIMIT):  # newest first
        if account is not None and record.accounts is not None and account not in record.accounts:
            continue
        if runs_only and record.action != "apply":
            continue
        known = entries.get(record.id)
        if known is None:
            entries[record.id] = HistoryEntry(record, record.at)
        else:
            known.started_at = record.at
    found = list(entries.values())[:limit]
    if with_steps:
        for entry in found:
            if entry.record.action == "apply":
                entry.steps = provider.journal(entry.record.id)
    return found
