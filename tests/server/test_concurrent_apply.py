"""Eight `convctl apply` processes at once against one `convctl serve` (issue 10 item 1).

Each process has its own manifests folder: the same account (Professional, 50 slots) with a
distinct set of events that needs 47 slots, so any two sets together, or one set on top of a
half-applied other, exceed the limit (R9). Under the lock every apply plans against the state
the previous one left, so: the successful runs never overlap in time (journal timestamps), each
one's writes are exactly the difference between the previous run's set and its own (so each
left the live state equal to its own manifests), the final state is the last run's set, and no
run ever met someone else's half-applied state ("would make 54", "already exists", 412).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from serverkit import Server, convctl, convctl_cmd, start_serve

ROOT = Path(__file__).resolve().parents[2]
RUNS = 8
STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
          "customer", "evangelist")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Server]:
    srv = start_serve(tmp_path / "server", "--no-agent")
    yield srv
    srv.stop()


def _event(name: str, stages: list[str]) -> str:
    return (f"---\napiVersion: convctl/v1\nkind: ConversionEvent\nmetadata: {{name: {name}}}\n"
            f"spec:\n  account: acme\n  adAccount: act_1234567890\n  trigger:\n"
            f"    lifecycleStageChange:\n      stages: [{', '.join(stages)}]\n")


def write_sets(root: Path) -> list[tuple[Path, set[str]]]:
    """``RUNS`` folders: acme's account manifest and 10 events using 47 slots (9 x 5 + 2)."""
    sets = []
    for i in range(RUNS):
        folder = root / f"set{i}"
        folder.mkdir(parents=True)
        shutil.copy(ROOT / "manifests/acme/account.yaml", folder / "account.yaml")
        names = {f"s{i}-e{j}" for j in range(10)}
        docs = [_event(f"s{i}-e{j}", [STAGES[(i + j + k) % 7] for k in range(5 if j < 9 else 2)])
                for j in range(10)]
        (folder / "events.yaml").write_text("".join(docs))
        sets.append((folder, names))
    return sets


def start_all(server: Server, sets: list[tuple[Path, set[str]]], *extra: str
              ) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "NO_COLOR": "1", "CONVCTL_STATE": server.url,
           "CONVCTL_TOKEN": server.tokens["write"]}
    return [subprocess.Popen([*convctl_cmd(), "apply", "--path", str(folder), "--auto-approve",
                              "--allow-mass-delete", *extra],
                             env={**env, "CONVCTL_LOCK_HOLDER": f"apply-{i}"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i, (folder, _names) in enumerate(sets)]


def _journal(server: Server, run_id: str) -> list[dict[str, str]]:
    with server.client("read") as client:
        entries: list[dict[str, str]] = client.get(f"/v1/journal/{run_id}").json()
        return entries


def check_serialized(server: Server, sets: list[tuple[Path, set[str]]],
                     results: list[tuple[int, str, str]]) -> None:
    """The successful runs, in journal order, never overlap, and each one wrote exactly the
    difference from the previous run's set to its own: each left its own set live."""
    runs = []
    for i, (code, out, err) in enumerate(results):
        if code != 0:
            continue
        run_id = re.search(r"Apply complete: \d+ step\(s\) done \(run (\w+)\)", out)
        assert run_id, (out, err)
        journal = _journal(server, run_id.group(1))
        assert journal and all(step["status"] == "done" for step in journal), journal
        runs.append((datetime.fromisoformat(journal[0]["at"]),
                     datetime.fromisoformat(journal[-1]["at"]), i, journal))
    runs.sort()
    assert runs, results
    before: set[str] = set()
    for (start, _end, i, journal), previous in zip(runs, [None, *runs[:-1]], strict=True):
        if previous is not None:
            assert start > previous[1], f"run {i} started before run {previous[2]} ended"
        writes = [step["description"].split(" ", 1) for step in journal]
        created = {what.removeprefix("event.acme/") for verb, what in writes
                   if verb == "create" and what.startswith("event.")}
        deleted = {what.removeprefix("event.acme/") for verb, what in writes if verb == "delete"}
        mine = sets[i][1]
        assert (created, deleted) == (mine - before, before - mine), f"run {i}: {writes}"
        before = mine
    with server.client("read") as client:
        live = {event["name"] for event in client.get("/v1/events").json()}
        assert client.get("/v1/locks").json() == []
    assert live == sets[runs[-1][2]][1], "the final state is the last successful run's set"


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        results.append((proc.returncode, out, err))
    for code, out, err in results:
        assert "Traceback" not in err, err
        for symptom in ("would make", "already exists", "changed by someone else", "pending"):
            assert symptom not in out + err, (code, err)
    return results


def test_eight_applies_that_wait_for_the_lock_all_succeed_in_turn(fresh: Server,
                                                                  tmp_path: Path) -> None:
    sets = write_sets(tmp_path / "sets")
    results = _finish(start_all(fresh, sets, "--lock-timeout", "200s"))
    assert [code for code, _, _ in results] == [0] * RUNS, [err for _, _, err in results]
    assert sum("Waiting up to 200s for the state lock" in err for _, _, err in results) >= 1
    check_serialized(fresh, sets, results)
    last = max(range(RUNS), key=lambda i: _journal(fresh, re.findall(
        r"\(run (\w+)\)", results[i][1])[0])[-1]["at"])
    plan = convctl("plan", "--detailed-exitcode", str(sets[last][0]),
                   env={"CONVCTL_STATE": fresh.url, "CONVCTL_TOKEN": fresh.tokens["read"]})
    assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr


def test_eight_applies_without_a_timeout_fail_naming_the_holder(fresh: Server,
                                                                tmp_path: Path) -> None:
    sets = write_sets(tmp_path / "sets")
    results = _finish(start_all(fresh, sets))
    codes = [code for code, _, _ in results]
    assert 0 in codes, [err for _, _, err in results]
    for i, (code, _out, err) in enumerate(results):
        if code != 0:
            holder = re.search(r"the state is locked: lock \w+ held by apply-(\d) \(pid \d+", err)
            assert holder and int(holder.group(1)) != i, err
            assert "`convctl unlock " in err and err.count("\n") == 1, err
    check_serialized(fresh, sets, results)


def _form_event(name: str) -> str:
    return (f"---\napiVersion: convctl/v1\nkind: ConversionEvent\nmetadata: {{name: {name}}}\n"
            "spec:\n  account: acme\n  adAccount: act_1234567890\n  trigger:\n"
            "    formSubmission:\n      formId: 0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10\n"
            "      facebookEvent: Lead\n      consent: {property: fb_consent, value: \"yes\"}\n"
            "  dataSharing:\n    properties: [email]\n")


def test_an_apply_whose_lock_is_broken_stops_before_its_next_write(fresh: Server,
                                                                  tmp_path: Path) -> None:
    """Issue 10 item 2 with real processes: the lock broken (`convctl unlock ID`'s request)
    while an apply over HTTP is under way; the apply stops before its next write, says why and
    reports the rest pending; the live state holds exactly the steps it reported done."""
    folder = tmp_path / "many"
    folder.mkdir()
    shutil.copy(ROOT / "manifests/acme/account.yaml", folder / "account.yaml")
    (folder / "events.yaml").write_text("".join(_form_event(f"form-{i:03d}") for i in range(400)))
    env = {"CONVCTL_STATE": fresh.url, "CONVCTL_TOKEN": fresh.tokens["write"]}
    log = tmp_path / "apply.err"
    with log.open("w") as sink:
        proc = subprocess.Popen([*convctl_cmd(), "apply", "--path", str(folder),
                                 "--auto-approve"], env={**os.environ, "NO_COLOR": "1", **env},
                                stdout=subprocess.DEVNULL, stderr=sink, text=True)
    deadline = time.monotonic() + 120
    while "[20/401]" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.01)
    with fresh.client("write") as client:  # what `convctl unlock ID` does, without its start-up
        [lock] = client.get("/v1/locks").json()
        assert client.delete(f"/v1/locks/{lock['id']}").status_code == 204
    proc.communicate(timeout=120)
    err = log.read_text()
    assert proc.returncode == 1, err
    done = len(re.findall(r"^\[\d+/401\] .*: done", err, re.M))
    assert 20 <= done < 401 and ": failed" not in err
    assert f"error: lost the state lock {lock['id']}" in err
    assert "Apply stopped (run " in err and f"{done} done, 0 failed, {401 - done} pending" in err
    with fresh.client("read") as client:
        assert len(client.get("/v1/events").json()) == done - 1  # the account was step 1
        assert client.get("/v1/locks").json() == []
