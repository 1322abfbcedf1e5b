"""The agent end to end over three networks (issue 16 items 1, 5, 6): ``open_agent`` wires one
destination per network (``--meta-base-url``, ``--linkedin-url``, ``--google-url``), and a form
submission and a lifecycle change reach Meta, LinkedIn and Google Ads (their strict fakes)
once each; each network's own skip reasons are counted in status and metrics; a 401 pauses
only the target it came from; a 429 holds off only that target."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from agentnetkit import (
    G_FORM,
    G_STAGE,
    LI_FORM,
    LI_STAGE,
    PIXEL,
    TOKENS,
    Fakes,
    applied_three,
    contact,
    form,
    form_ids,
    stage,
    stage_ids,
    three_fakes,
    write_jsonl,
)

from reconciler.core.models import DEFAULT_LINKEDIN_VERSION
from reconciler.server.agent_metrics import status_metrics
from reconciler.services.agent_chunk import queue_row
from reconciler.services.agent_setup import AgentHandle, AgentSettings, open_agent

NOW = datetime.now(UTC).replace(microsecond=0)
CREATED = NOW - timedelta(days=2)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fakes(clock: Clock) -> Iterator[Fakes]:
    with three_fakes(clock.epoch) as running:
        yield running


@pytest.fixture
def agent(tmp_path: Path, fakes: Fakes, clock: Clock,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AgentHandle, dict[str, str]]]:
    for name, token in TOKENS.items():
        monkeypatch.setenv(name, token)
    state = tmp_path / "state.db"
    live = applied_three(state, CREATED)
    handle = open_agent(AgentSettings(state=f"sqlite:///{state}", timeout=5.0, **fakes.urls()),
                        clock=clock, sleep=clock.sleep)
    yield handle, live
    handle.close()


def _feed(tmp: Path, handle: AgentHandle) -> tuple[datetime, datetime]:
    """Contact 501 (e-mail, phone) submits the demo form and becomes a customer; 502 (no
    e-mail, no phone, no click id) becomes a customer too."""
    at, later = NOW - timedelta(minutes=30), NOW - timedelta(minutes=20)
    lines = [contact("501"), contact("502", email="", phone=None),
             form("s-1", "501", at), stage("501", later), stage("502", later)]
    handle.agent.ingest_jsonl(write_jsonl(tmp / "feed.jsonl", lines))
    return at, later


def _expected(live: dict[str, str], later: datetime) -> dict[str, set[tuple[str, str]]]:
    fired = [form_ids(live, "s-1"), stage_ids(live, "501", later)]
    expected = {net: {ids[net] for ids in fired} for net in ("meta", "linkedin", "google")}
    expected["meta"].add(stage_ids(live, "502", later)["meta"])  # Meta needs the lead id only
    return expected


def test_form_and_lifecycle_events_reach_every_network_once(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes) -> None:
    handle, live = agent
    _, later = _feed(tmp_path, handle)
    handle.agent.run(once=True)
    handle.agent.run(once=True)  # a second pass sends nothing again
    status = handle.agent.status().as_json()
    assert fakes.received() == _expected(live, later)
    assert fakes.graph.duplicates == fakes.linkedin.duplicates == 0
    assert status["targets"] == {
        PIXEL: {"network": "meta", "queued": 0, "sent": 3, "dead": 0},
        LI_FORM: {"network": "linkedin", "queued": 0, "sent": 1, "dead": 0},
        LI_STAGE: {"network": "linkedin", "queued": 0, "sent": 1, "dead": 0},
        G_FORM: {"network": "google", "queued": 0, "sent": 1, "dead": 0},
        G_STAGE: {"network": "google", "queued": 0, "sent": 1, "dead": 0}}
    assert status["pixels"] == {PIXEL: {"queued": 0, "sent": 3, "dead": 0}}
    # The tokens went in each network's own request, never into the stored rows or status.
    assert not any(token in str(status) for token in TOKENS.values())


def test_each_networks_skip_reasons_are_counted_in_status_and_metrics(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes) -> None:
    handle, _ = agent
    _feed(tmp_path, handle)
    handle.agent.run(once=True)
    status = handle.agent.status().as_json()
    assert status["skips"]["no_user_id"] == 1  # LinkedIn: neither e-mail nor li_fat_id
    assert status["skips"]["no_click_id_or_identifier"] == 1  # Google: no click id, no e-mail
    assert "no_lead_id" not in status["skips"]  # R5 is Meta's: 502 has a lead id
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in status_metrics(status, NOW) for s in family.samples}
    assert samples[("convctl_agent_skips_total", (("reason", "no_user_id"),))] == 1
    assert samples[("convctl_agent_skips_total",
                    (("reason", "no_click_id_or_identifier"),))] == 1
    assert samples[("convctl_agent_target_outbox_events",
                    (("network", "linkedin"), ("state", "sent"), ("target", LI_FORM)))] == 1
    assert samples[("convctl_agent_target_outbox_events",
                    (("network", "google"), ("state", "sent"), ("target", G_STAGE)))] == 1


def test_a_401_pauses_only_the_target_it_came_from(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes) -> None:
    handle, live = agent
    _, later = _feed(tmp_path, handle)
    fakes.linkedin.fail_next("401")
    handle.agent.run(once=True)
    status = handle.agent.status().as_json()
    [paused] = status["paused"]
    assert paused in (LI_FORM, LI_STAGE)
    assert status["paused"][paused]["network"] == "linkedin"
    assert status["paused"][paused]["reason"] == "token"
    assert "LinkedIn refused the token from env ACME_LINKEDIN_TOKEN (HTTP 401" in (
        status["paused"][paused]["message"])
    expected = _expected(live, later)
    received = fakes.received()
    assert received["meta"] == expected["meta"] and received["google"] == expected["google"]
    assert {target for target, _ in received["linkedin"]} == {LI_FORM, LI_STAGE} - {paused}
    # `agent resume TARGET` ends the pause: the next pass sends what it held.
    assert handle.store.resume_target(paused)
    handle.agent.run(once=True)
    assert fakes.received() == expected
    assert handle.agent.status().as_json()["paused"] == {}


def test_a_sunset_linkedin_version_pauses_for_its_version_not_a_permission(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes) -> None:
    """LinkedIn stops serving the version convctl sends (fault injection: 426
    NONEXISTENT_VERSION): the target pauses with reason ``version`` and says to upgrade
    convctl, in ``agent status``, /metrics and the dashboard's view; nothing is given up."""
    from reconciler.cli.agent import status_text
    from reconciler.server.ui.views import agent_health

    handle, live = agent
    _, later = _feed(tmp_path, handle)
    fakes.linkedin.fail_next("426")
    handle.agent.run(once=True)
    status = handle.agent.status().as_json()
    [paused] = status["paused"]
    info = status["paused"][paused]
    assert (info["network"], info["reason"]) == ("linkedin", "version")
    served = (f"the LinkedIn API version {DEFAULT_LINKEDIN_VERSION} is no longer served "
              "(NONEXISTENT_VERSION: Requested version is not active): upgrade convctl")
    assert served in info["message"]
    assert "token" not in info["message"]  # the fix is an upgrade: the token is not to blame
    assert f"LinkedIn target {paused}: PAUSED since {info['since']} (version): " in (
        status_text(status))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in status_metrics(status, NOW) for s in family.samples}
    assert samples[("convctl_agent_target_paused", (("network", "linkedin"),
                                                    ("reason", "version"),
                                                    ("target", paused)))] == 1
    health = agent_health(status, None, NOW)
    assert health is not None
    [shown] = [s for s in health["stopped"] if s["target"] == f"linkedin {paused}"]
    assert shown["reason"] == "version" and served in shown["message"]
    assert status["outbox"]["dead"] == 0  # held, not given up: resuming sends it
    assert handle.store.resume_target(paused)
    handle.agent.run(once=True)
    assert fakes.received() == _expected(live, later)


def test_a_429_holds_off_only_the_target_it_came_from(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes,
        clock: Clock) -> None:
    handle, live = agent
    _, later = _feed(tmp_path, handle)
    fakes.google.fail_next("429", retry_after=60)
    handle.agent.run(once=True)
    status = handle.agent.status().as_json()
    [held] = status["heldOff"]
    assert held in (G_FORM, G_STAGE) and status["heldOffNetworks"] == {held: "google"}
    assert status["heldOff"][held] >= clock.epoch() + 60  # never sooner than Retry-After
    assert status["paused"] == {}
    expected = _expected(live, later)
    received = fakes.received()
    assert received["meta"] == expected["meta"] and received["linkedin"] == expected["linkedin"]
    assert {target for target, _ in received["google"]} == {G_FORM, G_STAGE} - {held}
    handle.agent.run(once=True)  # still held off: nothing more goes to Google
    assert len(fakes.google.requests) == 2
    clock.sleep(61)
    handle.agent.run(once=True)
    assert fakes.received() == expected


def test_status_and_resume_name_targets_with_their_network(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes) -> None:
    """``agent status`` shows each target with its network (Meta's as pixels, as before) and
    ``agent resume`` takes any network's target."""
    from click.testing import CliRunner

    from reconciler.cli.agent import status_text
    from reconciler.cli.main import cli

    handle, _ = agent
    _feed(tmp_path, handle)
    fakes.linkedin.fail_next("401")
    handle.agent.run(once=True)
    [paused] = handle.agent.status().as_json()["paused"]
    text = status_text(handle.agent.status().as_json())
    assert f"Pixel {PIXEL}: 0 queued, 3 sent, 0 dead" in text
    assert f"Google Ads target {G_FORM}: 0 queued, 1 sent, 0 dead" in text
    assert f"LinkedIn target {paused}: PAUSED since " in text
    state = handle.store.path  # the agent store is the SQLite state file
    resumed = CliRunner().invoke(cli, ["agent", "resume", paused, "--state", f"sqlite:///{state}"])
    assert resumed.output == f"LinkedIn target {paused} resumed.\n"
    again = CliRunner().invoke(cli, ["agent", "resume", paused, "--state", f"sqlite:///{state}"])
    assert again.output == f"LinkedIn target {paused} was not paused.\n"
    unknown = CliRunner().invoke(cli, ["agent", "resume", "x/1", "--state", f"sqlite:///{state}"])
    assert unknown.output == "Target x/1 was not paused.\n"


def test_retention_keeps_sent_rows_while_linkedin_and_google_take_events(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], clock: Clock) -> None:
    """R16 over 90-day networks: with LinkedIn and Google Ads events live, sent rows stay past
    the 30-day retention (a CRM event delivered again at day 60 is still known: not sent
    twice) and go once no network would take them (91 days)."""
    handle, _ = agent
    _feed(tmp_path, handle)
    handle.agent.run(once=True)
    sent = handle.agent.status().as_json()["outbox"]["sent"]
    clock.sleep(31 * 86400)
    assert handle.agent.prune_if_due() == (0, 0)
    clock.sleep(61 * 86400)  # 92 days on
    assert handle.agent.prune_if_due() == (3, sent)  # the 3 CRM events, every sent row


def test_a_dry_run_writes_every_networks_requests_and_no_token(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes,
        clock: Clock) -> None:
    """A dry run is a destination per network that writes: Meta's lines as before
    (``{"pixelId", "body"}``), the others' ``{"network", "target", "events"}``; nothing is
    sent, no token is written, the store is left as it was."""
    import json

    handle, _ = agent
    _feed(tmp_path, handle)
    out = tmp_path / "requests.jsonl"
    dry = open_agent(AgentSettings(state=f"sqlite:///{handle.store.path}", dry_run=out,
                                   **fakes.urls()), clock=clock, sleep=clock.sleep)
    try:
        dry.agent.run(once=True)
    finally:
        dry.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    meta = [x for x in lines if "pixelId" in x]
    others = {(x["network"], x["target"]): len(x["events"]) for x in lines if "network" in x}
    assert {x["pixelId"] for x in meta} == {PIXEL} and sum(len(x["body"]["data"])
                                                           for x in meta) == 3
    assert others == {("linkedin", LI_FORM): 1, ("linkedin", LI_STAGE): 1,
                      ("google", G_FORM): 1, ("google", G_STAGE): 1}
    assert not any(token in out.read_text() for token in TOKENS.values())
    assert fakes.received() == {"meta": set(), "linkedin": set(), "google": set()}
    assert handle.agent.status().as_json()["outbox"]["sent"] == 0


def test_each_network_gets_batches_of_at_most_its_own_limit(
        tmp_path: Path, fakes: Fakes, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--batch-size 1500``: Meta's requests stay at its 1,000, Google's and LinkedIn's take
    the 1,500 (both allow more)."""
    for name, token in TOKENS.items():
        monkeypatch.setenv(name, token)
    state = tmp_path / "state.db"
    applied_three(state, CREATED)
    handle = open_agent(AgentSettings(state=f"sqlite:///{state}", batch_size=1500,
                                      **fakes.urls()), clock=clock, sleep=clock.sleep)
    try:
        lines = []
        for i in range(1600):
            lines += [contact(f"{i}"), form(f"s-{i}", f"{i}", NOW - timedelta(minutes=30))]
        handle.agent.ingest_jsonl(write_jsonl(tmp_path / "many.jsonl", lines))
        handle.agent.run(once=True)
        status = handle.agent.status().as_json()
    finally:
        handle.close()
    assert sorted(r.events for r in fakes.graph.requests) == [600, 1000]
    assert sorted(r.elements for r in fakes.linkedin.requests) == [100, 1500]
    assert status["outbox"]["sent"] == 3 * 1600


class _Scores:
    """Meta's Dataset Quality answer for the pixel (the fake Graph's is tested elsewhere)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch(self, pixel_id: str, token: str) -> list[object]:
        self.asked.append(pixel_id)
        return []


def test_quality_scores_only_meta_events_and_refuses_an_account_without_a_pixel(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]]) -> None:
    """``agent quality`` is Meta's score of a pixel: an account's LinkedIn and Google Ads
    events are not listed beside it, and an account with no facebook block is one clear
    error, not a traceback."""
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.core.live import LiveAccount
    from reconciler.errors import UsageError
    from reconciler.services.quality import read_quality

    handle, _ = agent
    provider = SqliteProvider(handle.store.path)
    scores = _Scores()
    try:
        [acme] = read_quality(provider, handle.store, scores, lambda ref: "t")
        spec = provider.list_accounts()[0].spec.model_copy(update={"facebook": None})
    finally:
        provider.close()
    assert scores.asked == [PIXEL]
    assert [q.our_events for q in acme.events] == [("acme/demo-request",)]
    assert acme.crm_events == ["acme/funnel"]

    class OneAccount:  # the live state of an account on LinkedIn and Google Ads only
        def list_accounts(self) -> list[LiveAccount]:
            return [LiveAccount(name="acme", spec=spec, updated_at=NOW)]

        def list_events(self, account: str | None = None) -> list[object]:
            return []

    assert read_quality(OneAccount(), handle.store, scores, lambda ref: "t") == []  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="the account has no facebook block"):
        read_quality(OneAccount(), handle.store, scores, lambda ref: "t", "acme")  # type: ignore[arg-type]


def test_google_naming_one_bad_event_gets_the_others_sent_again_not_counted_sent(
        tmp_path: Path, agent: tuple[AgentHandle, dict[str, str]], fakes: Fakes,
        clock: Clock) -> None:
    """Google records nothing from a refused request, even when its error names the one bad
    event: that event is dead-lettered and the others of the batch go again, so none is marked
    sent that Google never took (issue 16 item 4)."""
    handle, live = agent
    _feed(tmp_path, handle)
    handle.agent.process_inbox()
    row = next(r for r in handle.store.due(clock.epoch(), 100) if r.target == G_FORM)
    handle.store.release_claims()
    bad = orjson.loads(row.body)
    bad["transactionId"] = "bad-click-id"
    bad["adIdentifiers"] = {"gclid": "not a click id"}  # spaces: Google refuses the format
    handle.store.commit_processed([], [queue_row(live["g-demo"], "bad-click-id", "acme", G_FORM,
                                                 bad, network="google")], {})
    handle.agent.run(once=True)
    handle.agent.run(once=True)
    targets = handle.agent.status().as_json()["targets"]
    assert targets[G_FORM] == {"network": "google", "queued": 0, "sent": 1, "dead": 1}
    taken = {tid for target, tid in fakes.received()["google"] if target == G_FORM}
    assert taken == {row.event_id}  # the good event arrived; the refused one never did
    dead = handle.store.dead_letters()
    assert [(d["eventId"], d["reason"]) for d in dead] == [("bad-click-id", "rejected")]


def test_a_postgresql_store_delivers_to_every_network_too(
        tmp_path: Path, fakes: Fakes, clock: Clock, postgres_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same delivery with the agent's queues in PostgreSQL (``--store postgresql://``):
    rows keyed by destination and target there too."""
    for name, token in TOKENS.items():
        monkeypatch.setenv(name, token)
    state = tmp_path / "state.db"
    live = applied_three(state, CREATED)
    handle = open_agent(AgentSettings(state=f"sqlite:///{state}", store=postgres_url,
                                      **fakes.urls()), clock=clock, sleep=clock.sleep)
    try:
        _, later = _feed(tmp_path, handle)
        handle.agent.run(once=True)
        status = handle.agent.status().as_json()
    finally:
        handle.close()
    assert fakes.received() == _expected(live, later)
    assert {t: c["network"] for t, c in status["targets"].items()} == {
        PIXEL: "meta", LI_FORM: "linkedin", LI_STAGE: "linkedin", G_FORM: "google",
        G_STAGE: "google"}
    assert status["outbox"] == {"queued": 0, "sent": 7, "dead": 0}
