"""``convctl serve`` runs the agent with a destination per network too: started with
``--linkedin-url`` and ``--google-url`` beside ``--meta-base-url``, it delivers a form
submission ingested before it started to Meta, LinkedIn and Google Ads (their strict fakes),
and its log never shows a token."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentnetkit import (
    TOKENS,
    applied_three,
    contact,
    form,
    form_ids,
    three_fakes,
    write_jsonl,
)
from serverkit import convctl, start_serve


def test_serve_delivers_to_every_network(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    live = applied_three(state, datetime.now(UTC) - timedelta(days=1))
    feed = write_jsonl(tmp_path / "feed.jsonl", [
        contact("501"), form("s-1", "501", datetime.now(UTC) - timedelta(minutes=5))])
    done = convctl("agent", "ingest", str(feed), "--state", f"sqlite:///{state}")
    assert done.returncode == 0, done.stderr
    expected = {net: {ids} for net, ids in form_ids(live, "s-1").items()}
    with three_fakes() as fakes:
        urls = fakes.urls()
        server = start_serve(tmp_path, "--meta-base-url", urls["meta_base_url"],
                             "--linkedin-url", urls["linkedin_url"], "--google-url",
                             urls["google_url"], "--poll-interval", "0.1", "--timeout", "5",
                             env=TOKENS)
        try:
            end = time.monotonic() + 20
            while fakes.received() != expected and time.monotonic() < end:
                time.sleep(0.1)
        finally:
            server.stop()
        assert fakes.received() == expected, server.output()[-2000:]
    log = server.output()
    assert not any(token in log for token in TOKENS.values())
