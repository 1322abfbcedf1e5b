"""How fast the sync agent builds and delivers Conversions API events, next to Meta's own SDK.

Two measurements, each side by side in one process with the official ``facebook-business`` SDK
(``pip install facebook-business``; when it is missing its columns are skipped with a note):

* **(a) payload building**, single-threaded, on the same generated contacts (email, phone, first
  and last name, city, zip, country, IP, user agent; several formats and countries):
  ours = ``Contact`` + ``FormSubmission`` -> ``core.capi.PayloadBuilder.form`` (normalize, SHA-256,
  event id, custom data; one builder per live event, as the agent makes one per inbox chunk)
  -> ``orjson.dumps``; the SDK = ``UserData`` + ``CustomData`` + ``Event``
  -> ``Event.normalize()`` -> ``json.dumps`` (what ``EventRequest.normalize`` does per event).
  Country codes are ISO alpha-2 because the SDK refuses country names. Each run (``--runs``,
  5 by default) builds every contact on both sides, the two taking turns every ``CHUNK``
  contacts, and the ratio is taken per run in wall and in CPU time; min / median / max over
  the runs are printed with the machine's load average.
* **(b) end to end**, to a loopback receiver (a lean HTTP/1.1 server in a child process on
  127.0.0.1 that parses each request, counts the (event_name, event_id) pairs and answers Graph's
  success body; it stops when this script closes its stdin, or after a deadline):
  ours, one process = JSONL files (contact upserts, form submissions, lifecycle-stage
  changes) -> ``Agent.ingest_jsonl`` (durable inbox) -> ``Agent.run(once=True)`` (match, build,
  outbox, deliver with ``GraphSender``, mark sent), one cycle per 1,000 CRM events;
  ours, scaled out = the same files ingested here while ``convctl agent run --role process``
  and ``convctl agent run --role deliver`` run as two more processes on the same state file
  (both cores busy; the ingest stays at most ``AHEAD`` chunks ahead of the receiver's answers);
  the SDK = the bare script a user would write: ``UserData``/``CustomData``/``Event`` objects for
  the same 1,000 Meta events, ``EventRequest(...).execute()`` (no durability, no matching).
  Latency of an event: from the start of the ingest call (ours) or of building its batch (the
  SDK) to the receiver's answer for the request that carried it (``time.monotonic``, one clock
  for every process of the machine).

The CRM events: half form submissions of the shipped ``demo-request`` event (website events with
hashed email/phone/names/country, IP and user agent), half ``customer`` stage changes of the
shipped ``funnel`` event (CRM events with a lead id); every one fires exactly one Meta event.

    python bench/agent_throughput.py                 # 100,000 events
    python bench/agent_throughput.py --n 20000       # another size
    python bench/agent_throughput.py --quick         # 2,000 events (smoke test)
    python bench/agent_throughput.py --part a --runs 9   # only (a), nine runs
    python bench/agent_throughput.py --profile       # also cProfile our builder and end-to-end path
    python bench/agent_throughput.py --part networks # (c), (d): per network (agent_networks.py)
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import _stats  # bench/, the script's own folder
import orjson

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
PORTAL = 4412345
PIXEL = "123456789012345"
DEMO_FORM = "0b8f6c9e-2c1a-4bd7-9e0b-6a1f1f9c2d10"
TOKEN_ENV = "ACME_META_TOKEN"
TOKEN = "bench-token-not-secret"
PAGE_URL = "https://acme.example/demo"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BATCH = 1000
RECEIVER_DEADLINE = 1800.0  # the receiver stops by itself after this many seconds at most
GOAL_BUILD = 3.0
CHUNK = 1000  # (a): contacts each builder builds before the other takes its turn
GOAL_E2E = 2.0
GOAL_SCALED = 3.0  # the scaled-out deployment (process + deliver roles)

# Values vary like a CRM's: a few hundred first names, a few thousand last names and cities
# (with accents, apostrophes, spaces, hyphens), nearly unique emails, phones, zips and IPs.
SYLLABLES = ("an", "be", "ca", "do", "é", "fi", "ga", "ho", "ju", "ka", "lé", "mo", "nu", "pa",
             "ri", "so", "tü", "va", "wi", "zo")
FIRST = ("Valéry", "John", "Zoë", "Mary-Jane", "Ahmed", "Ingrid", "José", "Anne Marie")
LAST_PREFIX = ("", "", "", "O'", "van der ", "Mc", "de la ", "")
CITY_SUFFIX = ("", " City", "-sur-Mer", "ville", "", " St.", "burg", "")
PLACES = (  # country, phone format, cities, zip format
    ("US", "({a}) 555-{b:04d}", ("St. Louis", "San Francisco", "New York"), "{z:05d}-1234"),
    ("US", "+1 {a} 555 {b:04d}", ("Boston", "Austin"), "{z:05d}"),
    ("GB", "+44 20 7946 {b:04d}", ("London", "St Albans"), "SW1A {a}AA"),
    ("DE", "+49 30 90{a}{b:04d}", ("München", "Berlin"), "{z:05d}"),
    ("FR", "+33 1 42 {a} {b:04d}", ("Paris", "Saint-Étienne"), "{z:05d}"),
)


# ---------------------------------------------------------------------------------------------
# Inputs: plain tuples of strings, the same for both sides.


@dataclass(frozen=True, slots=True)
class Person:
    cid: str
    email: str
    phone: str
    first: str
    last: str
    city: str
    zip: str
    country: str
    lead_id: str
    ip: str


def _word(i: int, parts: int) -> str:
    out = ""
    for _ in range(parts):
        out += SYLLABLES[i % len(SYLLABLES)]
        i //= len(SYLLABLES)
    return out.capitalize()


def people(n: int) -> list[Person]:
    out: list[Person] = []
    for i in range(n):
        country, phone, cities, zp = PLACES[i % len(PLACES)]
        a, b, z = 200 + (i * 13) % 700, (i * 7) % 10000, 10000 + (i * 7919) % 89999
        first = FIRST[i % 8] if i % 4 == 0 else _word(i * 31 % 400, 2)
        last = LAST_PREFIX[i % 8] + _word(i * 17 % 8000, 3)
        city = cities[i % len(cities)] if i % 3 == 0 else (
            _word(i * 11 % 400, 2) + CITY_SUFFIX[i % 8])
        out.append(Person(
            cid=str(100000 + i), email=f" Person{i}@Example.com ",
            phone=phone.format(a=a, b=b), first=first, last=last, city=city,
            zip=zp.format(a=a % 10, z=z), country=country,
            lead_id=str(1_000_000_000_000_000 + i), ip=f"203.0.{(i >> 8) % 256}.{i % 256}"))
    return out


def diversity(persons: Sequence[Person]) -> str:
    """Distinct values per field (what a cache of normalized values can reuse)."""
    names = ("first", "last", "city", "zip", "country", "email", "phone")
    return ", ".join(f"{name} {len({getattr(p, name) for p in persons}):,}" for name in names)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# (a) payload building.


def our_builder(now: datetime) -> Callable[[Person, int], bytes]:
    """``PayloadBuilder.form`` for an event sharing email, phone, names, city, zip, country."""
    from reconciler.core.capi import PayloadBuilder
    from reconciler.core.crm import Contact, FormSubmission
    from reconciler.core.live import LiveEvent
    from reconciler.core.models import AccountSpec, EventSpec

    account = AccountSpec.model_validate({
        "portalId": PORTAL, "tier": "professional", "leadSync": True,
        "defaultCountryCode": "1", "forms": [{"id": DEMO_FORM, "name": "Demo request"}],
        "facebook": {"businessId": "1122334455", "pixelId": PIXEL,
                     "adAccounts": ["act_1234567890"], "accessToken": {"env": TOKEN_ENV}}})
    spec = EventSpec.model_validate({
        "account": "acme", "adAccount": "act_1234567890",
        "trigger": {"formSubmission": {
            "formId": DEMO_FORM, "facebookEvent": "Lead", "predictiveLeadScore": True,
            "value": {"amount": 40, "currency": "EUR"},
            "consent": {"property": "fb_consent", "value": "yes"}}},
        "dataSharing": {"properties": ["email", "phone", "firstname", "lastname", "city", "zip",
                                       "country"], "ipAddress": True}})
    live = LiveEvent(id="ev-bench", account="acme", name="bench", spec=spec, api="enhanced",
                     created_at=now - timedelta(days=2), updated_at=now - timedelta(days=2))
    dumps = orjson.dumps
    form = PayloadBuilder(live, account).form
    # the agent reads the submission time from its inbox as a datetime (the SDK's side takes
    # an int): the bench's own date arithmetic is made once, not timed
    moments = [now - timedelta(seconds=ago) for ago in range(3600)]

    def build(p: Person, ago: int) -> bytes:
        contact = Contact(PORTAL, p.cid, {
            "email": p.email, "phone": p.phone, "firstname": p.first, "lastname": p.last,
            "city": p.city, "zip": p.zip, "country": p.country, "fb_consent": "yes",
            "hs_predictivecontactscore_v2": "42"})
        submission = FormSubmission(PORTAL, DEMO_FORM, f"sub-{p.cid}", p.cid,
                                    moments[ago], PAGE_URL, p.ip, USER_AGENT)
        return dumps(form(submission, contact))

    return build


def sdk_available() -> bool:
    try:
        import facebook_business  # noqa: F401
    except ImportError:
        return False
    return True


def sdk_builder(now: datetime) -> Callable[[Person, int], bytes]:
    """The SDK's objects for the same event; ``Event.normalize()`` then ``json.dumps`` as
    ``EventRequest.normalize`` does for each event of a request."""
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.user_data import UserData

    epoch = int(now.timestamp())

    def build(p: Person, ago: int) -> bytes:
        user = UserData(email=p.email, phone=p.phone, first_name=p.first, last_name=p.last,
                        city=p.city, zip_code=p.zip, country_code=p.country,
                        client_ip_address=p.ip, client_user_agent=USER_AGENT)
        custom = CustomData(value=40, currency="eur",
                            custom_properties={"predictive_lead_score": 42})
        event = Event(event_name="Lead", event_time=epoch - ago, event_id=f"form:sub-{p.cid}",
                      action_source=ActionSource.WEBSITE, event_source_url=PAGE_URL,
                      user_data=user, custom_data=custom)
        return json.dumps(event.normalize()).encode()

    return build


def clear_caches() -> None:
    """Forget what earlier passes normalized and hashed, so every pass starts cold."""
    from reconciler.core import capi, normalize, places

    normalize.clear_caches()
    capi.event_id.cache_clear()
    places.country_code.cache_clear()


@dataclass
class Side:
    """One builder's wall and CPU time over the runs of (a)."""

    name: str
    build: Callable[[Person, int], bytes]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    size: int = 0


def interleaved_run(sides: Sequence[Side], inputs: Sequence[Person]) -> None:
    """One run of (a): every side builds every input, the sides taking turns per chunk of
    ``CHUNK`` (in reverse order every other chunk), so a busy moment of the machine weighs on
    both alike; our caches start cold."""
    clear_caches()
    gc.collect()
    wall, cpu, size = [0.0] * len(sides), [0.0] * len(sides), [0] * len(sides)
    for turn, start in enumerate(range(0, len(inputs), CHUNK)):
        chunk = inputs[start:start + CHUNK]
        order = range(len(sides)) if turn % 2 == 0 else reversed(range(len(sides)))
        for index in order:
            build = sides[index].build
            w, c = time.perf_counter(), time.process_time()
            for i, p in enumerate(chunk, start):
                size[index] += len(build(p, i % 3600))
            cpu[index] += time.process_time() - c
            wall[index] += time.perf_counter() - w
    for index, side in enumerate(sides):
        side.wall.append(wall[index])
        side.cpu.append(cpu[index])
        side.size = size[index]


def spread(values: Sequence[float], fmt: str) -> str:
    """``min / median / max`` of ``values``."""
    ordered = sorted(values)
    return " / ".join(format(v, fmt) for v in (ordered[0], statistics.median(ordered),
                                               ordered[-1]))


def load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def part_a(n: int, runs: int, with_sdk: bool, profile: bool = False) -> dict[str, float]:
    now = datetime.now(UTC)
    inputs = people(n)
    sides = [Side("ours: `core.capi.PayloadBuilder.form` + orjson", our_builder(now))]
    if with_sdk:
        sides.append(Side("facebook-business: `Event.normalize()` + json", sdk_builder(now)))
    for side in sides:
        side.build(inputs[0], 0)  # warm what either side would warm on a first event
    load_before, loads = load(), []
    for _ in range(runs):
        interleaved_run(sides, inputs)
        loads.append(os.getloadavg()[0])
    print(f"\n### (a) Payload building, {n:,} contacts, single thread ({runs} run(s), "
          f"the builders taking turns every {CHUNK:,} contacts)\n")
    print(f"distinct values: {diversity(inputs)}")
    print(f"load average (1 / 5 / 15 min) before: {load_before}; after: {load()}; "
          f"1 min at the end of each run: {spread(loads, '.2f')} (min / median / max)\n")
    print("| builder | events/s (wall; min / median / max) | CPU µs per event "
          "(min / median / max) | bytes |")
    print("| --- | ---: | ---: | ---: |")
    for side in sides:
        print(f"| {side.name} | {spread([n / w for w in side.wall], ',.0f')} | "
              f"{spread([c / n * 1e6 for c in side.cpu], '.1f')} | {side.size:,} |")
    figures = {"ours": n / statistics.median(sides[0].wall)}
    if with_sdk:
        figures.update(ratios_a(n, sides[0], sides[1], loads))
    else:
        print("\nbuild ratio ours/SDK: skipped (facebook-business is not installed; "
              "`pip install facebook-business`)")
    if profile:
        profile_a(sides[0].build, inputs)
    return figures


def ratios_a(n: int, ours: Side, sdk: Side, loads: Sequence[float]) -> dict[str, float]:
    """Print the ratio of each run (wall and CPU, taken in the same run) and the verdict: the
    goal is met only when every run meets it, in wall and in CPU time."""
    walls = [s / o for o, s in zip(ours.wall, sdk.wall, strict=True)]
    cpus = [s / o for o, s in zip(ours.cpu, sdk.cpu, strict=True)]
    print("\n| run | ours events/s | SDK events/s | ratio (wall) | ratio (CPU) | load (1 min) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for run, (o, s, w, c, at) in enumerate(zip(ours.wall, sdk.wall, walls, cpus, loads,
                                               strict=True), 1):
        print(f"| {run} | {n / o:,.0f} | {n / s:,.0f} | {w:.2f}x | {c:.2f}x | {at:.2f} |")
    verdict = "met" if min(walls) >= GOAL_BUILD and min(cpus) >= GOAL_BUILD else "NOT met"
    print(f"\nbuild ratio ours/SDK: {spread(walls, '.2f')}x wall, {spread(cpus, '.2f')}x CPU "
          f"(min / median / max of {len(walls)} run(s); goal >= {GOAL_BUILD:g}x in every run: "
          f"{verdict})")
    return {"sdk": n / statistics.median(sdk.wall), "ratio": min(walls), "ratio_cpu": min(cpus)}


def profile_a(build: Callable[[Person, int], bytes], inputs: Sequence[Person]) -> None:
    """cProfile of our builder over the inputs (CPU time), then the CPU time each shared key's
    normalize + hash takes on its own (caches cold at the start, as in a run)."""
    from reconciler.core.normalize import digester
    from reconciler.core.places import country_code

    clear_caches()
    prof = cProfile.Profile(time.process_time)
    prof.runcall(lambda: [build(p, i % 3600) for i, p in enumerate(inputs)])
    out = StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    print("\n### Profile of our payload building (top 15 by own time)\n")
    print("```")
    print(out.getvalue().strip())
    print("```\n")
    clear_caches()
    print("| key | CPU µs per event |")
    print("| --- | ---: |")
    for key, attr in (("em", "email"), ("ph", "phone"), ("fn", "first"), ("ln", "last"),
                      ("ct", "city"), ("zp", "zip"), ("country", "country")):
        digest = digester(key, "1", None)
        values = [(getattr(p, attr), country_code(p.country)) for p in inputs]
        start = time.process_time()
        for value, country in values:
            digest(value, country)
        print(f"| {key} | {(time.process_time() - start) / len(values) * 1e6:.2f} |")


# ---------------------------------------------------------------------------------------------
# The loopback receiver (a child process; ``--receiver``).


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.lock = threading.Lock()
        self.keys: set[tuple[str, str]] = set()
        self.acked: dict[str, float] = {}  # event_id -> when it was answered (monotonic)
        self.events = 0
        self.answered = 0  # events in requests answered (printed in order, for ``wait_for``)
        self.requests = 0
        self.tokenless = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        query = urllib.parse.urlsplit(self.path).query
        if self.path.startswith(("/rest/conversionEvents", "/v1/events:ingest")):
            return self._other_network(body)
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            fields = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            data = [orjson.loads(e) if isinstance(e, str) else e
                    for e in orjson.loads(fields.get("data", "[]"))]
        else:
            fields = orjson.loads(body)
            data = fields.get("data", [])
        has_token = "access_token" in fields or "access_token=" in query
        with self.server.lock:
            self.server.requests += 1
            self.server.events += len(data)
            self.server.tokenless += 0 if has_token else 1
            self.server.keys.update((e["event_name"], str(e.get("event_id"))) for e in data)
        self._answer({"events_received": len(data), "messages": [],
                      "fbtrace_id": "AbenchAbenchAbench"})
        at = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process of the machine
        with self.server.lock:  # one line at a time: several agents may send at once
            self.server.acked.update((str(e.get("event_id")), at) for e in data)
            self.server.answered += len(data)
            print(self.server.answered, flush=True)  # progress (``Receiver.wait_for``), in order

    def _other_network(self, body: bytes) -> None:
        """LinkedIn's batch create or Google's ingest (``agent_networks``): each network's
        success answer, its events counted by their own ids (the bearer token is LinkedIn's
        and Google's way: nothing in the body)."""
        linkedin = self.path.startswith("/rest/")
        fields = orjson.loads(body)
        data = fields.get("elements" if linkedin else "events", [])
        ids = [(e["conversion"], e["eventId"]) if linkedin else ("google", e["transactionId"])
               for e in data]
        with self.server.lock:
            self.server.requests += 1
            self.server.events += len(data)
            self.server.tokenless += 0 if self.headers.get("authorization") else 1
            self.server.keys.update(ids)
        self._answer({"elements": [{"status": 201}] * len(data)} if linkedin
                     else {"requestId": "bench"})

    def do_GET(self) -> None:
        with self.server.lock:
            stats: dict[str, Any] = {
                "events": self.server.events, "unique": len(self.server.keys),
                "requests": self.server.requests, "tokenless": self.server.tokenless}
            if "acked=1" in self.path:
                stats["acked"] = self.server.acked
            if "reset=1" in self.path:
                self.server.keys.clear()
                self.server.acked.clear()
                self.server.events = self.server.requests = self.server.tokenless = 0
                self.server.answered = 0
        self._answer(stats)

    def _answer(self, answer: dict[str, Any]) -> None:
        raw = orjson.dumps(answer)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve_receiver(deadline: float) -> None:
    """Run the receiver until stdin closes (the parent is done or gone) or ``deadline``."""
    server = _Receiver()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    print(server.server_address[1], flush=True)
    done = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(deadline)
    server.shutdown()
    server.server_close()


class Receiver:
    """The receiver child process, started and stopped by the bench."""

    def __init__(self, deadline: float) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--receiver",
             "--deadline", f"{deadline:g}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise SystemExit("the loopback receiver did not start")
        self.base_url = f"http://127.0.0.1:{line}"
        self._progress = threading.Condition()
        self._received = 0
        threading.Thread(target=self._read_progress, daemon=True).start()

    def _read_progress(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._progress:
                self._received = int(line)
                self._progress.notify_all()

    def wait_for(self, events: int, deadline: float) -> None:
        """Until the receiver has answered requests carrying ``events`` events (since the last
        reset); ``SystemExit`` after ``deadline`` (``time.perf_counter``)."""
        with self._progress:
            while self._received < events:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise SystemExit(f"the receiver got {self._received:,} of {events:,} "
                                     "events in time; stopped")
                self._progress.wait(min(left, 1.0))

    def stats(self, reset: bool = False, acked: bool = False) -> dict[str, Any]:
        query = "&".join(q for q, on in (("reset=1", reset), ("acked=1", acked)) if on)
        with urllib.request.urlopen(f"{self.base_url}/stats?{query}",  # loopback only
                                    timeout=30) as answer:
            result: dict[str, Any] = orjson.loads(answer.read())
        if reset:
            with self._progress:
                self._received = 0
        return result

    def stop(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# (b) end to end.


@dataclass
class E2E:
    name: str
    events: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # user + sys of this process during the run (not the receiver's)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    received: int = 0
    unique: int = 0
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def merge(self, later: E2E) -> None:
        """Add a later round of the same path."""
        self.events += later.events
        self.seconds += later.seconds
        self.cpu += later.cpu
        self.latencies.extend(later.latencies)
        self.requests += later.requests
        self.received += later.received
        self.unique += later.unique
        self.note = f"{self.note}; {later.note}" if self.note else later.note

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def chunk_lines(persons: Sequence[Person], now: datetime) -> Iterator[list[dict[str, Any]]]:
    """JSONL lines per cycle: 500 contacts, then a form submission and a stage change each."""
    half = BATCH // 2
    for start in range(0, len(persons), half):
        lines: list[dict[str, Any]] = []
        group = persons[start:start + half]
        for p in group:
            lines.append({"type": "contact", "portalId": PORTAL, "contactId": p.cid,
                          "properties": {"email": p.email, "phone": p.phone,
                                         "firstname": p.first, "lastname": p.last,
                                         "country": p.country, "fb_consent": "yes",
                                         "hs_predictivecontactscore_v2": "42"},
                          "metaLeadId": p.lead_id, "adInteraction": False})
        for p in group:
            lines.append(form_line(p, now))
            lines.append(stage_line(p, now))
        yield lines


def _ago(p: Person, now: datetime, offset: int) -> datetime:
    return (now - timedelta(seconds=60 + (int(p.cid) * 7 + offset) % 3000)).replace(
        microsecond=0)


def form_line(p: Person, now: datetime) -> dict[str, Any]:
    return {"type": "formSubmission", "portalId": PORTAL, "formId": DEMO_FORM,
            "submissionId": f"sub-{p.cid}", "contactId": p.cid,
            "submittedAt": iso(_ago(p, now, 0)), "pageUrl": PAGE_URL, "ipAddress": p.ip,
            "userAgent": USER_AGENT}


def stage_line(p: Person, now: datetime) -> dict[str, Any]:
    return {"type": "lifecycleStageChange", "portalId": PORTAL, "contactId": p.cid,
            "stage": "customer", "occurredAt": iso(_ago(p, now, 1))}


def applied_state(path: Path, created: datetime) -> None:
    """The shipped manifests applied to a fresh SQLite state; events created at ``created``."""
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.services.apply import apply_plan
    from reconciler.services.planning import make_plan

    provider = SqliteProvider(path, clock=lambda: created)
    try:
        result = make_plan([MANIFESTS], provider)
        if result.plan is None:
            raise SystemExit(f"cannot plan the shipped manifests: {result.diagnostics}")
        report = apply_plan(result.plan, provider, progress=lambda _: None, holder="bench")
        if not report.ok:
            raise SystemExit("cannot apply the shipped manifests")
    finally:
        provider.close()


EVENT_ID = re.compile(rb'"event_id":"([^"]*)"')


class AckSender:
    """A destination (Meta's, over ``GraphSender``) that notes when each event id was
    acknowledged. The agent hands it the stored JSON of each event; the ids are read back with
    a regex (this costs ours a little; the SDK's path has no such step)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.network = inner.network
        self.acks: list[tuple[list[str], float]] = []

    def send(self, target: str, account: Any, events: Sequence[bytes], token: str) -> Any:
        outcome = self.inner.send(target, account, events, token)
        if outcome.kind == "sent":
            at = time.perf_counter()
            ids = [m.decode() for m in EVENT_ID.findall(b"\n".join(events))]
            self.acks.append((ids, at))
        return outcome

    def close(self) -> None:
        self.inner.close()


def prepare_ours(persons: Sequence[Person], now: datetime,
                 state: Path) -> list[tuple[Path, list[str]]]:
    """The shipped manifests applied to ``state``, and the JSONL chunk files (one per 1,000
    Meta events) beside it, each with the Meta event ids its events fire."""
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.core.capi import event_id
    from reconciler.core.crm import stage_source_id

    applied_state(state, now - timedelta(days=2))
    provider = SqliteProvider(state)
    try:
        live = {e.name: e.id for e in provider.list_events("acme")}
    finally:
        provider.close()
    files: list[tuple[Path, list[str]]] = []
    for index, lines in enumerate(chunk_lines(persons, now)):
        path = state.parent / f"{state.stem}-chunk-{index:04d}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
        ids: list[str] = []
        for x in lines:
            if x["type"] == "formSubmission":
                ids.append(event_id(live["demo-request"], f"form:{x['submissionId']}"))
            elif x["type"] == "lifecycleStageChange":
                when = datetime.fromisoformat(x["occurredAt"])
                ids.append(event_id(live["funnel"],
                                    stage_source_id(PORTAL, x["contactId"], x["stage"], when)))
        files.append((path, ids))
    return files


def _check_ours(result: E2E, status: dict[str, Any], receiver: Receiver, expected: int) -> None:
    stats = receiver.stats()
    result.requests, result.received, result.unique = (stats["requests"], stats["events"],
                                                       stats["unique"])
    outbox = status["outbox"]
    result.note = (f"outbox sent {outbox['sent']:,}, queued {outbox['queued']}, "
                   f"dead {outbox['dead']}; expected {expected:,}")
    if outbox["sent"] != expected or result.unique != expected:
        result.note += " (MISMATCH)"


def run_ours(persons: Sequence[Person], now: datetime, receiver: Receiver, tmp: Path,
             profile: cProfile.Profile | None, deadline: float) -> E2E:
    """One process: per 1,000 events, ``ingest_jsonl`` then ``Agent.run(once=True)``."""
    from reconciler.adapters.agentstore import AgentStore
    from reconciler.adapters.contacts import EmbeddedContacts
    from reconciler.adapters.meta import GraphSender
    from reconciler.adapters.networks.meta import MetaDestination
    from reconciler.adapters.state.sqlite import SqliteProvider
    from reconciler.services.agent import Agent, AgentConfig

    state = tmp / "one-process.db"
    files = prepare_ours(persons, now, state)
    gc.collect()
    gc.freeze()  # the bench's own inputs are not the agent's heap: keep them out of GC passes
    provider = SqliteProvider(state)
    store = AgentStore(state)
    graph = GraphSender(receiver.base_url, "v25.0", timeout=30.0)
    sender = AckSender(MetaDestination(graph))
    agent = Agent(provider, store, EmbeddedContacts(store), {"meta": sender},
                  AgentConfig(poll_interval=0.0), resolve=lambda ref: TOKEN)
    result = E2E("ours, one process: per 1,000 events `agent ingest`, then `agent run --once`")
    started: dict[str, float] = {}
    try:
        receiver.stats(reset=True)
        begin, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        for path, ids in files:
            t0 = time.perf_counter()
            if t0 > deadline:
                raise SystemExit("the end-to-end run took too long; stopped")
            for eid in ids:
                started[eid] = t0
            agent.ingest_jsonl(path)
            agent.run(once=True)
        if profile is not None:
            profile.disable()
        result.seconds = time.perf_counter() - begin
        result.cpu = time.process_time() - cpu
        status = agent.status().as_json()
    finally:
        graph.close()
        store.close()
        provider.close()
    for ids, at in sender.acks:
        result.latencies.extend(at - started[eid] for eid in ids if eid in started)
    result.events = sum(len(ids) for ids, _ in sender.acks)
    _check_ours(result, status, receiver, sum(len(ids) for _, ids in files))
    return result


AHEAD = 3  # scaled-out run: chunks ingested ahead of what the receiver has answered


def run_ours_scaled(persons: Sequence[Person], now: datetime, receiver: Receiver, tmp: Path,
                    deadline: float) -> E2E:
    """Three processes on one state file, as a deployment that uses both cores would run:
    this one ingests (as ``convctl serve`` or ``convctl agent ingest`` would), ``convctl agent
    run --role process`` matches and queues, ``convctl agent run --role deliver`` sends; the
    agents poll every 10 ms. The ingest keeps at most ``AHEAD`` chunks ahead of what the
    receiver has answered, so the latency is the pipeline's, not a backlog's. CPU: all three
    processes (not the receiver)."""
    from reconciler.adapters.agentstore import AgentStore
    from reconciler.services.agent import agent_status, ingest_jsonl

    state = tmp / "scaled.db"
    files = prepare_ours(persons, now, state)
    env = {**os.environ, "CONVCTL_META_BASE_URL": receiver.base_url, TOKEN_ENV: TOKEN,
           "CONVCTL_AGENT_POLL_INTERVAL": "0.01"}
    store = AgentStore(state)
    result = E2E("ours, scaled out: ingest here, `agent run --role process` and "
                 "`--role deliver` as two more processes")
    started: dict[str, float] = {}
    receiver.stats(reset=True)
    gc.collect()
    gc.freeze()
    agents = [subprocess.Popen(
        [sys.executable, "-c", "from reconciler.cli.main import main; main()", "agent", "run",
         "--role", role, "--state", f"sqlite:///{state}"], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for role in ("process", "deliver")]
    try:
        time.sleep(1.5)  # let them start (imports, migrations) before the clock starts
        for agent in agents:
            if agent.poll() is not None:
                why = agent.stderr.read() if agent.stderr else ""
                raise SystemExit(f"convctl agent run exited: {why}")
        before = [_process_cpu(a.pid) for a in agents]
        begin, cpu = time.perf_counter(), time.process_time()
        sent = 0
        for index, (path, ids) in enumerate(files):
            if index >= AHEAD:
                receiver.wait_for(sum(len(i) for _, i in files[:index - AHEAD + 1]), deadline)
            t0 = time.monotonic()
            for eid in ids:
                started[eid] = t0
            ingest_jsonl(store, path)
            sent += len(ids)
        receiver.wait_for(sent, deadline)
        result.seconds = time.perf_counter() - begin
        result.cpu = time.process_time() - cpu + sum(
            _process_cpu(a.pid) - b for a, b in zip(agents, before, strict=True))
    finally:
        for agent in agents:
            agent.terminate()  # SIGTERM: each stops after its cycle (marks what was sent)
        for agent in agents:
            try:
                agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
    try:
        status = agent_status(store).as_json()
    finally:
        store.close()
    acked = receiver.stats(acked=True)["acked"]
    result.latencies = [acked[eid] - t0 for eid, t0 in started.items() if eid in acked]
    result.events = len(result.latencies)
    _check_ours(result, status, receiver, sent)
    return result


def _process_cpu(pid: int) -> float:
    """user + sys seconds of a running process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_sdk(persons: Sequence[Person], now: datetime, receiver: Receiver,
            deadline: float) -> E2E:
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.adobjects.serverside.user_data import UserData
    from facebook_business.api import FacebookAdsApi

    api = FacebookAdsApi.init(access_token=TOKEN, crash_log=False)
    session = api._session
    session.GRAPH = receiver.base_url  # instance override of FacebookSession.GRAPH
    session.requests.trust_env = False  # loopback only: no proxy from the environment
    crm = CustomData(custom_properties={"event_source": "crm", "lead_event_source": "HubSpot"})

    def form_event(p: Person) -> Any:
        user = UserData(email=p.email, phone=p.phone, first_name=p.first, last_name=p.last,
                        country_code=p.country, client_ip_address=p.ip,
                        client_user_agent=USER_AGENT)
        custom = CustomData(value=40, currency="eur",
                            custom_properties={"predictive_lead_score": 42})
        return Event(event_name="Lead", event_time=int(_ago(p, now, 0).timestamp()),
                     event_id=f"form:sub-{p.cid}", action_source=ActionSource.WEBSITE,
                     event_source_url=PAGE_URL, user_data=user, custom_data=custom)

    def crm_event(p: Person) -> Any:
        return Event(event_name="Customer", event_time=int(_ago(p, now, 1).timestamp()),
                     event_id=f"stage:{p.cid}:customer",
                     action_source=ActionSource.SYSTEM_GENERATED,
                     user_data=UserData(lead_id=p.lead_id), custom_data=crm)

    gc.collect()
    gc.freeze()  # as for ours: the bench's inputs stay out of the collector's passes
    result = E2E("facebook-business: build objects + `EventRequest.execute()` (bare)")
    half = BATCH // 2
    receiver.stats(reset=True)
    begin, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(persons), half):
        t0 = time.perf_counter()
        if t0 > deadline:
            raise SystemExit("the SDK run took too long; stopped")
        group = persons[start:start + half]
        events = [form_event(p) for p in group] + [crm_event(p) for p in group]
        answer = EventRequest(events=events, pixel_id=PIXEL).execute()
        acked = time.perf_counter()
        result.events += int(answer.events_received or 0)
        result.latencies.extend([acked - t0] * len(events))
    result.seconds = time.perf_counter() - begin
    result.cpu = time.process_time() - cpu
    stats = receiver.stats()
    result.requests, result.received, result.unique = (stats["requests"], stats["events"],
                                                       stats["unique"])
    expected = 2 * len(persons)
    result.note = f"events_received {result.events:,}; expected {expected:,}"
    if result.unique != expected:
        result.note += " (MISMATCH)"
    return result


Runner = Callable[[Sequence[Person], Path], E2E]


def part_b(n: int, with_sdk: bool, profile: bool, limit_s: float,
           rounds: int) -> dict[str, float]:
    """Each path runs ``rounds`` times on its own share of the events, the paths taking turns
    (in reverse order every other round), so a machine that speeds up or slows down during the
    run weighs on every path alike; the figures are the sums of the rounds."""
    persons = people(n // 2)
    now = datetime.now(UTC)
    deadline = time.perf_counter() + limit_s
    # CPU time, not wall time: on a shared machine the wall clock also counts the waits for a core
    prof = cProfile.Profile(time.process_time) if profile else None
    receiver = Receiver(min(RECEIVER_DEADLINE, limit_s + 60))
    runners: list[Runner] = []
    if with_sdk:
        runners.append(lambda group, work: run_sdk(group, now, receiver, deadline))
    runners.append(lambda group, work: run_ours(group, now, receiver, work, prof, deadline))
    runners.append(lambda group, work: run_ours_scaled(group, now, receiver, work, deadline))
    totals: dict[int, E2E] = {}
    per_round: dict[int, list[E2E]] = {}
    share = -(-len(persons) // rounds)
    try:
        with tempfile.TemporaryDirectory(prefix="convctl-agent-bench-") as tmp:
            for turn in range(rounds):
                group = persons[turn * share:(turn + 1) * share]
                work = Path(tmp) / f"round-{turn}"
                work.mkdir()
                order = range(len(runners)) if turn % 2 == 0 else reversed(range(len(runners)))
                for index in order:
                    result = runners[index](group, work)
                    per_round.setdefault(index, []).append(copy.deepcopy(result))
                    if index in totals:
                        totals[index].merge(result)
                    else:
                        totals[index] = result
    finally:
        receiver.stop()
    results = [totals[index] for index in sorted(totals)]
    print(f"\n### (b) End to end, {2 * len(persons):,} events to a loopback receiver, "
          f"batches of {BATCH:,}, {rounds} round(s) taking turns\n")
    print("| path | time | CPU | events/s | p50 latency | p99 latency | requests | received "
          "(unique) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r.name} | {r.seconds:.2f} s | {r.cpu:.2f} s | {r.rate:,.0f} | "
              f"{r.pct(0.5) * 1000:.0f} ms | {r.pct(0.99) * 1000:.0f} ms | {r.requests} | "
              f"{r.received:,} ({r.unique:,}) |")
    print()
    for r in results:
        print(f"- {r.name.split(':')[0]}: {r.note}")
    one, scaled = results[-2], results[-1]
    figures = {"ours": one.rate, "ours_p99_ms": one.pct(0.99) * 1000,
               "scaled": scaled.rate, "scaled_p99_ms": scaled.pct(0.99) * 1000}
    if with_sdk:
        sdk = results[0]
        figures["sdk"] = sdk.rate
        figures["sdk_p99_ms"] = sdk.pct(0.99) * 1000
        figures["ratio"] = one.rate / sdk.rate
        figures["ratio_scaled"] = scaled.rate / sdk.rate
        peers = [r.rate for r in per_round[0]]
        for label, key, index, goal in (
                ("one process", "ratio", len(runners) - 2, GOAL_E2E),
                ("scaled out on both cores", "ratio_scaled", len(runners) - 1, GOAL_SCALED)):
            each = _stats.ratios([r.rate for r in per_round[index]], peers)
            verdict = "met" if min(each) >= goal else "NOT met"
            print(f"end-to-end ratio ours (durable, {label}) / SDK (bare): "
                  f"{_stats.spread(each, '{:.2f}x')} (min / median / max of {len(each)} "
                  f"round(s); all rounds together {figures[key]:.2f}x; goal >= {goal:g}x in "
                  f"every round: {verdict})")
        print(f"load average (1 / 5 / 15 min) after: {_stats.load()}")
    else:
        print("\nend-to-end ratio ours/SDK: skipped (facebook-business is not installed; "
              "`pip install facebook-business`)")
    if prof is not None:
        out = StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        print("\n### Profile of our end-to-end path (top 25 by own time)\n")
        print("```")
        print(out.getvalue().strip())
        print("```")
    return figures


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="events (and contacts for (a))")
    parser.add_argument("--quick", action="store_true", help="2,000 events, one pass (smoke)")
    parser.add_argument("--part", choices=("a", "b", "networks", "all"), default="all",
                        help="networks: (c) and (d), per network (bench/agent_networks.py)")
    parser.add_argument("--runs", type=int, default=5,
                        help="(a): runs, each over all contacts (min / median / max shown)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK columns")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile our builder (a) and our end-to-end path (b)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="(b): rounds in which the paths take turns")
    parser.add_argument("--time-limit", type=float, default=900.0,
                        help="seconds after which a run gives up")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=RECEIVER_DEADLINE,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receiver:
        serve_receiver(args.deadline)
        return 0
    n = 2_000 if args.quick else args.n
    runs = 1 if args.quick else args.runs
    if n < 2 or runs < 1:
        parser.error("--n must be at least 2 and --runs at least 1")
    with_sdk = not args.no_sdk and sdk_available()
    if not args.no_sdk and not with_sdk:
        print("note: facebook-business is not installed (`pip install facebook-business`); "
              "the SDK columns are skipped")
    print(f"{_stats.machine()}; SDK: {_sdk_version() if with_sdk else 'not used'}")
    if args.part in ("a", "all"):
        part_a(n, runs, with_sdk, args.profile)
    if args.part in ("b", "all"):
        part_b(n, with_sdk, args.profile, 120.0 if args.quick else args.time_limit,
               1 if args.quick else args.rounds)
    if args.part in ("networks", "all"):
        import agent_networks

        builds = agent_networks.part_c(n, runs)
        agent_networks.part_d(min(n, 2_000 if args.quick else 6_000),
                              3 if args.quick else max(3, args.rounds), builds)
    return 0


def _sdk_version() -> str:
    from importlib.metadata import version

    return f"facebook-business {version('facebook-business')}"


if __name__ == "__main__":
    sys.exit(main())
