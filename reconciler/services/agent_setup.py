"""Wiring an ``Agent`` from settings: live state, agent store, contact source, destinations.

Used by ``convctl agent ...`` and by ``convctl serve`` (which runs the agent unless
``--no-agent``). The agent store (``--store`` / ``CONVCTL_AGENT_STORE``) is a SQLite file or a
``postgresql://`` database (``adapters.agentstore_pg``: several agents share it, claiming work
in transactions a stalled agent holds ``lease_seconds`` at most). Without ``--store`` it
follows the state: the SQLite state file, the PostgreSQL state database, else
``.convctl/agent.db``.

A dry run (``dry_run``: a file) leaves the store exactly as it was: the agent works on a copy of
it taken at start (SQLite's online backup, in a temporary folder removed on close) that pulls in
what the store's inbox gains meanwhile (``DryRunStore``: events ingested by ``convctl serve``
reach a dry-run agent too), and sends to dry-run destinations (``adapters.networks.dry_run``),
which write each request to the file. Paused targets are resumed in the copy, and no token is
read: the file shows every request the queue holds, with no token in it.

Otherwise there is one ``Destination`` per network in use (``Destinations``): Meta's over
``GraphSender`` (``--meta-base-url``, alias ``--graph-url``), LinkedIn's (``--linkedin-url``)
and Google Ads' (``--google-url``), each network's token read from its account block's
``accessToken``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler.adapters.agentrows import InboxRow
from reconciler.adapters.agentstore import AgentStore
from reconciler.adapters.contacts import (
    ContactSource,
    EmbeddedContacts,
    HubSpotContacts,
    LayeredContacts,
)
from reconciler.adapters.meta import DEFAULT_API_VERSION, DEFAULT_BASE_URL, GraphSender
from reconciler.adapters.networks.dry_run import DryRunFile
from reconciler.adapters.networks.meta import MetaDestination
from reconciler.adapters.secrets import resolve_secret
from reconciler.adapters.state import is_postgres, open_provider, resolve_url
from reconciler.core.capi import MAX_BATCH
from reconciler.core.models import NETWORKS, SecretRef
from reconciler.errors import UsageError
from reconciler.services.agent import DEFAULT_RETENTION_DAYS, Agent, AgentConfig, Role
from reconciler.services.ports import AgentStore as AgentStoreProtocol
from reconciler.services.ports import Destination

DEFAULT_STORE = ".convctl/agent.db"
HUBSPOT_BASE_URL = "https://api.hubapi.com"


@dataclass(frozen=True)
class AgentSettings:
    state: str | None = None
    store: str | None = None
    meta_base_url: str = DEFAULT_BASE_URL
    linkedin_url: str = "https://api.linkedin.com"
    google_url: str = "https://datamanager.googleapis.com"
    api_version: str = DEFAULT_API_VERSION
    test_event_code: str | None = None
    dry_run: Path | None = None
    batch_size: int = MAX_BATCH
    poll_interval: float = 1.0
    retention_days: int = DEFAULT_RETENTION_DAYS
    role: Role = "all"
    timeout: float = 30.0
    contacts: str = "embedded"
    hubspot_base_url: str = HUBSPOT_BASE_URL
    hubspot_token_env: str = "CONVCTL_HUBSPOT_TOKEN"
    lease_seconds: float = 60.0  # how long a stalled agent holds its PostgreSQL claims
    secrets_dir: str | None = None  # where {file: PATH} tokens may be read; None: the default


@dataclass
class AgentHandle:
    """An agent and what must be closed with it."""

    agent: Agent
    store: AgentStoreProtocol
    closers: list[Callable[[], None]] = field(default_factory=list)
    dry_run: DryRunFile | None = None

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def store_url(state: str | None, store: str | None) -> str | None:
    """The PostgreSQL agent store to use (``store``, else a PostgreSQL state), or None."""
    chosen = store or os.environ.get("CONVCTL_AGENT_STORE")
    if chosen:
        return chosen if is_postgres(chosen) else None
    url = resolve_url(state)
    return url if is_postgres(url) else None


def store_path(state: str | None, store: str | None) -> Path:
    """The agent store file: ``store`` if given, else the SQLite state file, else the default."""
    if store:
        return Path(store.removeprefix("sqlite:///")).expanduser()
    url = resolve_url(state)
    if url.startswith("sqlite:///") and url != "sqlite:///":
        return Path(url.removeprefix("sqlite:///")).expanduser()
    return Path(os.environ.get("CONVCTL_AGENT_STORE") or DEFAULT_STORE)


def open_store(settings: AgentSettings, clock: Callable[[], datetime] | None = None
               ) -> AgentStoreProtocol:
    """The agent store the settings name: a PostgreSQL database or a SQLite file."""
    url = store_url(settings.state, settings.store)
    if url is not None:
        from reconciler.adapters.agentstore_pg import PostgresAgentStore

        return PostgresAgentStore(url, clock=clock, lease_seconds=settings.lease_seconds)
    return AgentStore(store_path(settings.state, settings.store), clock=clock)


def open_agent(settings: AgentSettings, *, clock: Callable[[], datetime] | None = None,
               sleep: Callable[[float], None] = time.sleep) -> AgentHandle:
    """Open everything the agent needs; close the handle when done."""
    now = clock or (lambda: datetime.now(UTC))
    provider = open_provider(settings.state)
    closers: list[Callable[[], None]] = [provider.close]
    try:
        store, destinations, resolve, dry = _store_and_destinations(settings, now, closers)
        contacts = _contacts(settings, store, closers)
        config = AgentConfig(batch_size=settings.batch_size,
                             poll_interval=settings.poll_interval,
                             retention_days=settings.retention_days, role=settings.role)
        agent = Agent(provider, store, contacts, destinations, config, clock=now, sleep=sleep,
                      resolve=resolve)
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    return AgentHandle(agent, store, closers, dry)


_Wiring = tuple[AgentStoreProtocol, Mapping[str, Destination], Callable[[SecretRef], str],
                DryRunFile | None]


class Destinations(Mapping[str, Destination]):
    """One destination per network in use: made when delivery first asks for its network
    (``--meta-base-url``, ``--linkedin-url``, ``--google-url``), so a network no event uses
    opens nothing, and one whose first event is applied while the agent runs is served too.
    ``close`` closes those made."""

    def __init__(self, settings: AgentSettings, now: Callable[[], datetime]) -> None:
        self._settings, self._now = settings, now
        self._made: dict[str, Destination] = {}
        self._lock = threading.Lock()

    def __getitem__(self, network: str) -> Destination:
        with self._lock:
            made = self._made.get(network)
            if made is None:
                made = self._made[network] = self._make(network)
            return made

    def _make(self, network: str) -> Destination:
        s, timeout, now = self._settings, self._settings.timeout, self._now
        if network == "meta":
            graph = GraphSender(s.meta_base_url, s.api_version, timeout=timeout, clock=now)
            return MetaDestination(graph, s.test_event_code)
        if network == "linkedin":
            from reconciler.adapters.networks.linkedin import LinkedInDestination

            return LinkedInDestination(s.linkedin_url, timeout=timeout, clock=now)
        if network == "google":
            from reconciler.adapters.networks.google import GoogleDestination

            return GoogleDestination(s.google_url, timeout=timeout, clock=now)
        raise KeyError(network)

    def __iter__(self) -> Iterator[str]:
        return iter(NETWORKS)

    def __len__(self) -> int:
        return len(NETWORKS)

    def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for destination in made:
            destination.close()


def destinations(settings: AgentSettings, now: Callable[[], datetime],
                 closers: list[Callable[[], None]]) -> Destinations:
    """The networks' destinations, closed with the agent."""
    made = Destinations(settings, now)
    closers.append(made.close)
    return made


def _store_and_destinations(settings: AgentSettings, now: Callable[[], datetime],
                            closers: list[Callable[[], None]]) -> _Wiring:
    """The store, where batches go and how tokens are read: the store and the networks; or,
    for a dry run, a copy of the store (paused targets resumed), the dry-run file and no
    token."""
    if settings.dry_run is None:
        store = open_store(settings, now)
        closers.append(store.close)
        resolve = functools.partial(resolve_secret, secrets_dir=settings.secrets_dir)
        return store, destinations(settings, now, closers), resolve, None
    if store_url(settings.state, settings.store) is not None:
        raise UsageError("--dry-run works on a SQLite agent store; copy the PostgreSQL one into "
                         "a file first (convctl state copy) and point --store at it")
    path = store_path(settings.state, settings.store)
    copy = DryRunStore(_dry_run_copy(path, closers), path, clock=now)
    closers.append(copy.close)
    for target in copy.paused_targets():
        copy.resume_target(target)
    dry = DryRunFile(settings.dry_run, settings.test_event_code)
    return copy, {n: dry.destination(n) for n in NETWORKS}, _no_token, dry


class DryRunStore(AgentStore):
    """A dry run's copy of the store at ``source``: before it lists new inbox rows it pulls in
    those the store gained since (``AgentStore.pull_from``), so a dry-run agent keeps up."""

    def __init__(self, path: Path, source: Path, clock: Callable[[], datetime]) -> None:
        super().__init__(path, clock=clock)
        self.source = source

    def pending(self, limit: int) -> list[InboxRow]:
        self.pull_from(self.source)
        return super().pending(limit)


def _dry_run_copy(path: Path, closers: list[Callable[[], None]]) -> Path:
    """A copy of the store at ``path`` for a dry run to work on (removed on close)."""
    folder = Path(tempfile.mkdtemp(prefix="convctl-dry-run-"))
    closers.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    original = AgentStore(path)
    try:
        original.copy_to(folder / "agent.db")
    finally:
        original.close()
    return folder / "agent.db"


def _no_token(ref: SecretRef) -> str:
    """A dry run reads no token: its destination is handed this placeholder, never writes it."""
    return "dry-run"


def _contacts(settings: AgentSettings, store: AgentStoreProtocol,
              closers: list[Callable[[], None]]) -> ContactSource:
    embedded = EmbeddedContacts(store)
    if settings.contacts == "embedded":
        return embedded
    if settings.contacts != "hubspot":
        raise UsageError(f"unknown contact source {settings.contacts!r}; use embedded or hubspot")
    token = os.environ.get(settings.hubspot_token_env, "").strip()
    if not token:
        raise UsageError(f"the hubspot contact source needs a private app token in "
                         f"{settings.hubspot_token_env}")
    remote = HubSpotContacts(settings.hubspot_base_url, token)
    closers.append(remote.close)
    return LayeredContacts(remote, embedded)
