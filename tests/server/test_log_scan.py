"""Every log line of a full run holds no token and no raw PII (issue 12, Logs): a state
applied, contacts and a form submission ingested with ``convctl agent ingest``, ``convctl serve
--log-format json --log-level debug`` with its agent delivering to the strict fake Graph API,
forms posted over HTTP, hostile requests with tokens in the query, header and request id."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from agentio import DEMO_FORM, applied_state, contact_line, form_line, write_jsonl
from fakes.graph import FakeGraph
from serverkit import convctl, start_serve

META_TOKEN = "EAAlogscan" + "Z" * 30
PII = ("person701@example.com", "person702@example.com", "jane.roe@example.org", "6505551201",
       "555-1201", "650) 555", "valéry", "o'brien", "203.0.113.7", "198.51.100.23")


def _form(submission: str) -> dict[str, object]:
    return {"formId": DEMO_FORM, "portalId": 4412345, "submissionId": submission,
            "submittedAt": int(time.time() * 1000), "contactId": "702",
            "fields": [{"name": "email", "value": "Jane.Roe@example.org"},
                       {"name": "phone", "value": "+1 650 555 1201"},
                       {"name": "fb_consent", "value": "yes"}],
            "context": {"ipAddress": "198.51.100.23", "pageUri": "https://acme.example/demo"},
            "userAgent": "Mozilla/5.0"}


def test_a_full_run_logs_no_token_and_no_pii(tmp_path: object) -> None:
    from pathlib import Path

    work = Path(str(tmp_path))
    state = work / "state.db"
    applied_state(state, datetime.now(UTC) - timedelta(hours=2))
    at = datetime.now(UTC) - timedelta(minutes=5)
    feed = write_jsonl(work / "feed.jsonl", [contact_line("701"), contact_line("702"),
                                             form_line("sub-1", "701", at)])
    assert convctl("agent", "ingest", str(feed), "--state", f"sqlite:///{state}").returncode == 0
    with FakeGraph(token=META_TOKEN) as graph:
        server = start_serve(work, "--meta-base-url", graph.base_url, "--poll-interval", "0.1",
                             "--log-format", "json", "--log-level", "debug",
                             env={"ACME_META_TOKEN": META_TOKEN})
        try:
            ingest = server.tokens["ingest"]
            with server.client("ingest") as client:
                assert client.post("/v1/ingest/forms", json=_form("sub-2")).status_code == 202
                client.get(f"/v1/accounts?access_token={ingest}")
            httpx.get(f"{server.url}/v1/accounts?access_token={META_TOKEN}&email=jane.roe"
                      "@example.org", headers={"X-Request-ID": ingest}, timeout=10)
            httpx.get(f"{server.url}/v1/accounts", timeout=10,
                      headers={"Authorization": f"Bearer {META_TOKEN}"})
            deadline = time.monotonic() + 20
            while len(graph.unique) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(graph.unique) >= 2, server.output()[-3000:]
        finally:
            assert server.stop() == 0
    lines = server.output().splitlines()
    records = [orjson.loads(line) for line in lines]  # every line is one JSON object
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "reconciler.access", "reconciler.agent"} <= loggers, loggers
    assert any(r.get("http", {}).get("status") == 202 for r in records)
    text = "\n".join(lines).lower()
    for secret in (META_TOKEN, *server.tokens.values()):
        assert secret.lower() not in text
    for value in PII:
        assert value not in text, value
    assert not re.search(r"cvt_[a-z0-9_-]{8}", text)


def test_agent_run_logs_json_at_the_level_asked(tmp_path: object) -> None:
    import signal
    import subprocess
    from pathlib import Path

    from serverkit import convctl_cmd

    state = f"sqlite:///{Path(str(tmp_path)) / 'state.db'}"
    quiet = convctl("agent", "run", "--once", "--log-format", "json", "--log-level", "warning",
                    "--state", state)
    assert quiet.returncode == 0 and quiet.stderr == ""
    proc = subprocess.Popen([*convctl_cmd(), "agent", "run", "--log-format", "json",
                             "--poll-interval", "0.1", "--state", state],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    records = [orjson.loads(line) for line in err.splitlines()]
    assert any(r["message"].startswith("agent running") and r["level"] == "INFO"
               and r["logger"] == "reconciler.agent" for r in records), err
