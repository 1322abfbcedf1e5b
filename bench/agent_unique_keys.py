"""Whether compact unique keys make the agent's SQLite inserts cheaper (issue 17 item 3): the
inbox's dedup key and the outbox's (event_id, conversion event) pair as their text (as stored
today) or as a hash (a 16-byte BLOB of the dedup key; two 64-bit integers of SHA-256, the event
id's and the pair's, so ``known_event_ids`` keeps an index to look the event id up by).

One SQLite file per run (WAL, the store's sync settings: ``FULL`` for the inbox, ``NORMAL`` for
the outbox), 1,000-row chunks as the agent writes them (half form submissions, whose keys come in
order, half stage changes, whose keys are hashes), the tables cut down to the columns that
matter (a 200-byte inbox body, a 300-byte payload); the hashing in Python is counted. Printed:
CPU microseconds per row over each slice of the file's growth, min / median / max of the runs,
the two layouts taking turns. Figures are printed, never asserted.

    python bench/agent_unique_keys.py                  # up to 100,000 rows, 3 runs
    python bench/agent_unique_keys.py --rows 300000 --step 50000
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats

LAYOUTS = {
    "text": (
        "CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, dedup_key TEXT NOT NULL "
        "UNIQUE, kind TEXT NOT NULL, portal_id INTEGER NOT NULL, body TEXT NOT NULL, "
        "received_at TEXT NOT NULL)",
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, conversion_event_id TEXT "
        "NOT NULL, event_id TEXT NOT NULL, account TEXT NOT NULL, payload TEXT NOT NULL, status "
        "TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (event_id, conversion_event_id))"),
    "hashed": (
        "CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, dedup_hash BLOB NOT NULL "
        "UNIQUE, dedup_key TEXT NOT NULL, kind TEXT NOT NULL, portal_id INTEGER NOT NULL, "
        "body TEXT NOT NULL, received_at TEXT NOT NULL)",
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, conversion_event_id TEXT "
        "NOT NULL, event_id TEXT NOT NULL, account TEXT NOT NULL, payload TEXT NOT NULL, status "
        "TEXT NOT NULL, created_at TEXT NOT NULL, event_hash INTEGER NOT NULL, pair_hash "
        "INTEGER NOT NULL, UNIQUE (event_hash, pair_hash))"),
}
QUEUED = "CREATE INDEX outbox_queued ON outbox (seq) WHERE status = 'queued'"
BODY = orjson.dumps({"portalId": 4412345, "pad": "y" * 180}).decode()
PAYLOAD = orjson.dumps({"event_name": "Lead", "user_data": {"em": ["a" * 64], "ph": ["b" * 64]},
                        "custom_data": {"pad": "y" * 100}}).decode()


def h64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _chunk(start: int) -> tuple[list[str], list[tuple[str, str]]]:
    keys: list[str] = []
    for i in range(start, start + 1000, 2):
        keys += [f"form:4412345:sub-{100000 + i}",
                 "stage:" + hashlib.sha256(str(i).encode()).hexdigest()[:32]]
    pairs = [("acme/lead" if i % 2 else "acme/customer",
              hashlib.sha256(f"ev{i}".encode()).hexdigest()[:32])
             for i in range(start, start + 1000)]
    return keys, pairs


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    yield
    conn.execute("COMMIT")


def _write(conn: sqlite3.Connection, layout: str, keys: list[str],
           pairs: list[tuple[str, str]]) -> tuple[float, float]:
    conn.execute("PRAGMA synchronous = FULL")
    cpu = time.process_time()
    with _transaction(conn):
        if layout == "text":
            conn.executemany("INSERT OR IGNORE INTO inbox (dedup_key, kind, portal_id, body, "
                             "received_at) VALUES (?, 'form', 1, ?, 'now')",
                             [(k, BODY) for k in keys])
        else:
            conn.executemany("INSERT OR IGNORE INTO inbox (dedup_hash, dedup_key, kind, "
                             "portal_id, body, received_at) VALUES (?, ?, 'form', 1, ?, 'now')",
                             [(hashlib.sha256(k.encode()).digest()[:16], k, BODY) for k in keys])
    inbox = time.process_time() - cpu
    conn.execute("PRAGMA synchronous = NORMAL")
    cpu = time.process_time()
    with _transaction(conn):
        if layout == "text":
            conn.executemany("INSERT OR IGNORE INTO outbox (conversion_event_id, event_id, "
                             "account, payload, status, created_at) VALUES (?, ?, 'acme', ?, "
                             "'queued', 'now')", [(c, e, PAYLOAD) for c, e in pairs])
        else:
            conn.executemany("INSERT OR IGNORE INTO outbox (conversion_event_id, event_id, "
                             "account, payload, status, created_at, event_hash, pair_hash) "
                             "VALUES (?, ?, 'acme', ?, 'queued', 'now', ?, ?)",
                             [(c, e, PAYLOAD, h64(e), h64(f"{e}\x1f{c}")) for c, e in pairs])
    return inbox, time.process_time() - cpu


def one_run(layout: str, rows: int, step: int) -> list[tuple[float, float]]:
    """CPU µs per row (inbox, outbox) over each ``step`` rows of one new file."""
    out: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="convctl-keys-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "keys.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in (*LAYOUTS[layout], QUEUED):
            conn.execute(statement)
        inbox = outbox = 0.0
        for start in range(0, rows, 1000):
            a, b = _write(conn, layout, *_chunk(start))
            inbox, outbox = inbox + a, outbox + b
            if (start + 1000) % step == 0:
                out.append((inbox / step * 1e6, outbox / step * 1e6))
                inbox = outbox = 0.0
        conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--step", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{_stats.machine()}\n")
    results: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in LAYOUTS}
    for _ in range(_stats.runs(args.runs)):
        for name in LAYOUTS:
            results[name].append(one_run(name, args.rows, args.step))
    print("| rows so far | inbox text | inbox hashed | outbox text | outbox hashed |")
    print("|---:|---:|---:|---:|---:|")
    for slot, upto in enumerate(range(args.step, args.rows + 1, args.step)):
        cells = [_stats.spread([run[slot][table] for run in results[name]], "{:.2f}")
                 for table in (0, 1) for name in LAYOUTS]
        print(f"| {upto:,} | " + " | ".join(cells) + " |")
    print(f"\nCPU µs per row, min / median / max of {len(results['text'])} runs; load average "
          f"after: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
