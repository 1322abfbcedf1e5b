"""The agent's ingest: CRM events into the durable inbox, committed before acknowledged.

Three ways in (product.md §5): a JSONL file (``convctl agent ingest``), HubSpot webhook records
and form submissions (``convctl serve``'s ingest routes). ``AgentStore.ingest`` commits before
it returns, so a caller acknowledges only what is stored; duplicates are acknowledged and
dropped, invalid client fields are dropped and counted. ``services.agent`` then processes the
inbox.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters.agentcodec import dedup_key as inbox_key
from reconciler.adapters.agentrows import IngestResult
from reconciler.core.crm import (
    Contact,
    CrmParseError,
    FormIngest,
    FormSubmission,
    StageChange,
    WebhookRecord,
    parse_jsonl_line,
)
from reconciler.errors import UsageError
from reconciler.services.ports import AgentStore


@dataclass
class IngestReport:
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    contacts: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)  # invalid fields, by reason

    def add(self, result: IngestResult, drops: Counter[str] | None = None) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.contacts += result.contacts
        self.dropped.update(drops or ())



def ingest_webhook(store: AgentStore, records: Iterable[WebhookRecord]) -> IngestResult:
    """Store webhook records in one committed transaction (duplicates dropped): the server
    acknowledges only after this returns."""
    return store.ingest([(r.key.digest(), r.event) for r in records])


def ingest_forms(store: AgentStore, forms: Iterable[FormIngest]) -> IngestResult:
    """Store form submissions and the contact fields they carried in one transaction."""
    items: list[tuple[str, StageChange | FormSubmission]] = []
    contacts: list[Contact] = []
    drops: Counter[str] = Counter()
    for form in forms:
        items.append((inbox_key(form.submission), form.submission))
        drops.update(form.submission.dropped)
        if form.contact.properties or form.contact.fbc:
            contacts.append(form.contact)
    return store.ingest(items, contacts, drops)


def ingest_jsonl(store: AgentStore, path: str | Path, chunk: int = 5000) -> IngestReport:
    """Ingest a JSONL file; bad lines are reported (line number, reason) and skipped; invalid
    client fields are dropped and counted (``FormSubmission.dropped``). Each chunk of lines is
    committed before the next is read."""
    report = IngestReport()
    items: list[tuple[str, StageChange | FormSubmission]] = []
    contacts: list[Contact] = []
    drops: Counter[str] = Counter()
    for number, line in _lines(path):
        report.lines += 1
        try:
            parsed = parse_jsonl_line(line)
        except CrmParseError as exc:
            report.errors.append((number, str(exc)))
            continue
        if isinstance(parsed, Contact):
            contacts.append(parsed)
        else:
            items.append((inbox_key(parsed), parsed))
            if isinstance(parsed, FormSubmission) and parsed.dropped:
                drops.update(parsed.dropped)
        if len(items) + len(contacts) >= chunk:
            report.add(store.ingest(items, contacts, drops), drops)
            items, contacts, drops = [], [], Counter()
    report.add(store.ingest(items, contacts, drops), drops)
    return report


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as source:
            for number, line in enumerate(source, 1):
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc

