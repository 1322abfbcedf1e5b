"""Audit of issue 5, item 1 and "Bad input": a JSONL back-fill with bad lines reports each bad
line by its number and ingests every good one, whatever the bad line holds (never a crash,
never a lost good event); blank lines keep the numbering; the report names no contact data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from agentio import (
    ACME_PORTAL,
    DEMO_FORM,
    T_CREATED,
    contact_line,
    form_line,
    stage_line,
    write_jsonl,
)
from click.testing import CliRunner

from reconciler.adapters.agentstore import AgentStore, InboxRow
from reconciler.cli.main import cli
from reconciler.services.agent import IngestReport, ingest_jsonl

WHEN = T_CREATED + timedelta(days=1)


def _ingest(tmp_path: Path, path: Path) -> tuple[IngestReport, list[InboxRow]]:
    """Ingest ``path`` into a fresh store: the report and the rows now pending."""
    store = AgentStore(tmp_path / "agent.db")
    try:
        return ingest_jsonl(store, path), store.pending(100)
    finally:
        store.close()


def test_mixed_kinds_blank_lines_and_bad_lines_keep_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    write_jsonl(path, [contact_line("501"), "", stage_line("501", "customer", WHEN),
                       '{"type": "formSubmission", "portalId": 4412345}',
                       form_line("s-1", "501", WHEN), "   ", "[1, 2]",
                       '{"type": "contact", "portalId": -3, "contactId": "x"}',
                       stage_line("502", "lead", WHEN)])
    report, pending = _ingest(tmp_path, path)
    assert [n for n, _ in report.errors] == [4, 7, 8]
    assert (report.stored, report.contacts) == (3, 1)
    assert len(pending) == 3


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_out_of_range_time_is_a_bad_line_not_a_crash(tmp_path: Path, moment: str) -> None:
    bad = {**stage_line("501", "customer", WHEN), "occurredAt": moment}
    path = write_jsonl(tmp_path / "feed.jsonl", [
        contact_line("501"), bad, stage_line("502", "customer", WHEN),
        {**form_line("s-9", "501", WHEN), "submittedAt": moment}])
    report, pending = _ingest(tmp_path, path)
    assert [n for n, _ in report.errors] == [2, 4]
    assert (report.stored, report.contacts, len(pending)) == (1, 1, 1)


def test_a_portal_id_beyond_sqlite_range_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    huge = 2**64 - 1
    path = write_jsonl(tmp_path / "feed.jsonl", [
        stage_line("501", "customer", WHEN), stage_line("502", "customer", WHEN, portal=huge),
        contact_line("503", portal=huge), stage_line("504", "customer", WHEN)])
    report, pending = _ingest(tmp_path, path)
    assert [n for n, _ in report.errors] == [2, 3]
    assert (report.stored, len(pending)) == (2, 2)


def test_cli_names_every_bad_line_and_no_contact_data(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVCTL_AGENT_STORE", raising=False)
    secret_mail = "jane.private@example.com"
    path = write_jsonl(tmp_path / "feed.jsonl", [
        contact_line("501"),
        {"type": "contact", "portalId": ACME_PORTAL, "contactId": "502",
         "properties": {"email": secret_mail, "phone": 6505551212}},
        {"type": "formSubmission", "portalId": ACME_PORTAL, "formId": DEMO_FORM,
         "submissionId": "s-1", "contactId": "501", "submittedAt": secret_mail},
        {**stage_line("501", "customer", WHEN), "email": secret_mail},
        stage_line("501", "lead", WHEN)])
    result = CliRunner().invoke(cli, ["agent", "ingest", str(path), "--state",
                                      f"sqlite:///{tmp_path / 'state.db'}"])
    assert result.exit_code == 1, result.output
    assert result.stdout == ("Ingested 1 event(s) and 1 contact(s) from 5 line(s); "
                             "0 duplicate(s) dropped, 3 bad line(s) skipped.\n")
    errors = result.stderr.splitlines()
    assert [line.split(":")[1] for line in errors] == ["2", "3", "4"]
    assert secret_mail not in result.output and "6505551212" not in result.output
    assert "Traceback" not in result.output
