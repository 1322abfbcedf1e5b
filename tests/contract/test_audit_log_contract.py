"""The audit log on every backend (issue 14 item 4): records are appended and read back newest
first, as written (over HTTP the server names the actor: the request's token)."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.core.provider import AuditRecord, Provider


def _record(n: int, **fields: object) -> AuditRecord:
    base: dict[str, object] = {"id": f"run-{n}", "at": datetime(2026, 3, 1, 12, n, tzinfo=UTC),
                               "actor": "alice@laptop", "action": "apply", "outcome": "started"}
    return AuditRecord.model_validate({**base, **fields})


def test_audit_records_read_back_newest_first(provider: Provider) -> None:
    assert provider.audit_log() == []
    first = _record(1, accounts=("acme",), plan_hash="ab" * 32, git_sha="0123abc")
    second = _record(1, outcome="done", detail="5 done, 0 failed, 0 pending")
    third = _record(2, action="unlock", outcome="ok", target="lock-1")
    for record in (first, second, third):
        provider.record_audit(record)
    found = provider.audit_log()
    assert [(r.id, r.outcome) for r in found] == [("run-2", "ok"), ("run-1", "done"),
                                                  ("run-1", "started")]
    assert found[2].accounts == ("acme",) and found[2].plan_hash == "ab" * 32
    assert found[2].at == first.at and found[1].detail == second.detail
    assert all(r.actor in ("alice@laptop", "token:contract") or r.actor.startswith("token:")
               for r in found)
    assert [r.id for r in provider.audit_log(limit=1)] == ["run-2"]
