"""The agent store's embedded contact source: the ``contacts`` table, upserted by (portal,
contact id) and merged with what is stored (later updates win), read in chunks of 500 ids
(``AgentStore`` inherits it; ``ingest`` stores contacts in its own transaction).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from reconciler.adapters import agentcodec as codec
from reconciler.adapters.agentstore_controls import iso
from reconciler.core.crm import Contact, merge_contacts

# Contact upserts: one statement for the batch; the merge with the stored body is done first.
_UPSERT_CONTACT = ("INSERT INTO contacts (portal_id, contact_id, body, updated_at) "
                   "VALUES (?, ?, ?, ?) ON CONFLICT (portal_id, contact_id) "
                   "DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at")




def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class EmbeddedContactStore:
    """Mixed into ``AgentStore``, which provides ``_read``, ``_write`` and ``_clock``."""

    _read: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _write: Callable[..., AbstractContextManager[sqlite3.Connection]]
    _clock: Callable[[], datetime]

    def upsert_contacts(self, contacts: Iterable[Contact]) -> int:
        items = list(contacts)
        now = iso(self._clock())
        with self._write() as conn:
            self._upsert_contacts(conn, items, now)
        return len(items)

    @staticmethod
    def _upsert_contacts(conn: sqlite3.Connection, contacts: Sequence[Contact],
                         now: str) -> None:
        """Merge each contact into its stored version (later updates win, in order) and write
        them all with one statement."""
        if not contacts:
            return
        merged = merge_contacts(contacts)
        portals: dict[int, list[str]] = {}
        for portal, cid in merged:
            portals.setdefault(portal, []).append(cid)
        for portal, ids in portals.items():
            for chunk in chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                stored = conn.execute(f"SELECT contact_id, body FROM contacts WHERE portal_id = ? "
                                      f"AND contact_id IN ({marks})", (portal, *chunk))
                for cid, body in stored:
                    update = merged[(portal, cid)]
                    merged[(portal, cid)] = codec.decode_contact(portal, cid, body).merged(update)
        conn.executemany(_UPSERT_CONTACT, [(portal, cid, codec.encode_contact(c), now)
                                           for (portal, cid), c in merged.items()])

    def contacts(self, portal_id: int, contact_ids: Iterable[str]) -> dict[str, Contact]:
        ids = sorted(set(contact_ids))
        found: dict[str, Contact] = {}
        with self._read() as conn:
            for chunk in chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT contact_id, body FROM contacts WHERE portal_id = ? "
                                    f"AND contact_id IN ({marks})", (portal_id, *chunk))
                for cid, body in rows:
                    found[cid] = codec.decode_contact(portal_id, cid, body)
        return found
