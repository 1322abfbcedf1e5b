"""The dashboard's view data: plain dicts and lists built from the Provider and the agent store.

Only the ``Provider`` protocol (plus the optional ``RunHistory``) and the agent store's public
read methods are used, never SQL, so every state backend serves the same pages. Templates get
these values and nothing else; everything here is tested without a browser.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from reconciler.core.coverage import MATCH_KEYS, EventCoverage
from reconciler.core.live import LiveAccount, LiveEvent
from reconciler.core.provider import AuditRecord, Provider, RunHistory
from reconciler.server.ui.charts import sent_chart
from reconciler.server.ui.snapshot import Snapshot, base_row

STATES = ("enabled", "disabled", "managed", "unmanaged", "drifted")
TRIGGERS = ("form", "lifecycle")
SORTS = ("name", "account", "trigger", "state", "last_sent", "sent", "dead")
PAGE_SIZE = 50


class AgentReads(Protocol):
    """The agent store's read methods the dashboard uses."""

    def event_activity(self, since: datetime) -> dict[str, dict[str, Any]]: ...
    def sent_per_minute(self, since: datetime) -> dict[str, int]: ...
    def deliveries(self, conversion_event_id: str, limit: int = ...) -> list[dict[str, Any]]: ...
    def dead_letter_groups(self) -> list[dict[str, Any]]: ...


# -- overview -----------------------------------------------------------------------------

def account_summary(account: LiveAccount, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Quota (slots used of the tier's limit, R7/R9), slots per stage, events by state."""
    stages: Counter[str] = Counter(stage for row in rows for stage in row["stages"])
    used, limit = sum(row["stageCount"] for row in rows), account.limit
    counts = Counter(state for row in rows for state in row["states"])
    return {"name": account.name, "tier": account.spec.tier, "limit": limit, "used": used,
            "percent": min(100, round(100 * used / limit)) if limit else 0,
            "level": "danger" if used >= limit else "warn" if used >= 0.8 * limit else "ok",
            "stages": sorted(stages.items(), key=lambda kv: (-kv[1], kv[0])),
            "events": len(rows), "states": {s: counts.get(s, 0) for s in STATES}}


def accounts_overview(snap: Snapshot) -> list[dict[str, Any]]:
    by_account: dict[str, list[dict[str, Any]]] = {}
    for row in snap.rows:
        by_account.setdefault(row["account"], []).append(row)
    return [account_summary(acc, by_account.get(acc.name, []))
            for acc in sorted(snap.accounts, key=lambda a: a.name)]


def minute_series(per_minute: dict[str, int], now: datetime, minutes: int = 60
                  ) -> list[tuple[str, int]]:
    """The last ``minutes`` UTC minutes, oldest first, with zero where nothing was sent."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    keys = [(end - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M")
            for i in range(minutes - 1, -1, -1)]
    return [(key, per_minute.get(key, 0)) for key in keys]


def agent_health(status: dict[str, Any] | None, store: AgentReads | None,
                 now: datetime) -> dict[str, Any] | None:
    """Inbox backlog, queue, dead letters, paused and held-off work (``agent status``'s
    numbers), and sends per minute over the last hour as a chart."""
    if status is None:
        return None
    series = minute_series(store.sent_per_minute(now - timedelta(hours=1)) if store else {}, now)
    networks = status.get("heldOffNetworks", {})
    paused = [{**info, "target": _target(info.get("network", "meta"), target)}
              for target, info in status["paused"].items()]
    held = [{"target": target, **info} for target, info in status["held"].items()]
    backoff = [{"target": _target(networks.get(target, "meta"), target), "reason": "backoff",
                "message": f"next try in {max(0.0, until - now.timestamp()):.0f} s", "since": ""}
               for target, until in status.get("heldOff", {}).items()]
    loop = status.get("loop")
    return {"backlog": status["inbox"]["new"], "processed": status["inbox"]["processed"],
            "queued": status["outbox"]["queued"], "sent": status["outbox"]["sent"],
            "dead": status["outbox"]["dead"], "oldestQueuedAt": status.get("oldestQueuedAt"),
            "deadReasons": status.get("deadLetters", {}), "skips": status.get("skips", {}),
            "stopped": [*paused, *held, *backoff], "series": series,
            "running": None if loop is None else bool(loop.get("running")),
            "lastHour": sum(n for _, n in series), "chart": sent_chart(series)}


def _target(network: str, target: str) -> str:
    """How a stopped target is named: ``pixel 123...`` for Meta, ``linkedin urn:...`` else."""
    return f"pixel {target}" if network == "meta" else f"{network} {target}"


def last_run(provider: Provider) -> dict[str, Any] | None:
    runs = recent_runs(provider, 1)
    return runs[0] if runs else None


def has_history(provider: Provider) -> bool:
    return isinstance(provider, RunHistory)


def _run_records(provider: Provider) -> dict[str, AuditRecord]:
    """The ``started`` audit record of each recent apply run, by run id."""
    return {r.id: r for r in provider.audit_log(500)
            if r.action == "apply" and r.outcome == "started"}


def recent_runs(provider: Provider, limit: int = 10) -> list[dict[str, Any]]:
    """The latest apply runs with their steps (empty when the backend keeps no history)."""
    if not isinstance(provider, RunHistory):
        return []
    runs = provider.runs(limit)
    started = _run_records(provider)
    for run in runs:
        record = started.get(run["run_id"])  # who ran it and its plan (the audit log)
        run["actor"] = record.actor if record else ""
        run["plan"] = record.detail.partition("; ")[2] if record else ""
        run["git_sha"] = record.git_sha if record else None
        run["entries"] = provider.journal(run["run_id"])
        run["outcome"] = ("failed" if run["failed"] else "partial" if run["pending"]
                          else "done")
    return runs


# -- events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventQuery:
    """Filters, sort and page of the Events list, read from the query string."""

    account: str = ""
    trigger: str = ""
    state: str = ""
    q: str = ""
    sort: str = "name"
    desc: bool = False
    page: int = 1

    @classmethod
    def parse(cls, params: dict[str, str]) -> EventQuery:
        def pick(name: str, allowed: Iterable[str]) -> str:
            value = params.get(name, "")
            return value if value in allowed else ""

        page = params.get("page", "1")
        return cls(account=params.get("account", "")[:100], trigger=pick("trigger", TRIGGERS),
                   state=pick("state", STATES), q=params.get("q", "")[:100].strip(),
                   sort=pick("sort", SORTS) or "name", desc=params.get("dir") == "desc",
                   page=int(page) if page.isdigit() and 0 < len(page) < 7 else 1)

    def link(self, **changes: Any) -> str:
        """The query string of this view with ``changes`` (page back to 1 unless given)."""
        values = {"account": self.account, "trigger": self.trigger, "state": self.state,
                  "q": self.q, "sort": self.sort, "dir": "desc" if self.desc else "",
                  "page": 1, **changes}
        from urllib.parse import urlencode

        return "?" + urlencode({k: v for k, v in values.items()
                                if v not in ("", None) and not (k == "page" and v == 1)
                                and not (k == "sort" and v == "name")})


@dataclass
class EventPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    accounts: list[str] = field(default_factory=list)


def event_row(row: dict[str, Any], activity: dict[str, Any] | None) -> dict[str, Any]:
    act = activity or {}
    return {**row, "lastSent": act.get("lastSent"), "sent": act.get("sent", 0),
            "dead": act.get("dead", 0), "skipped": sum(act.get("skips", {}).values())}


def _sort_key(sort: str, activity: dict[str, dict[str, Any]]
              ) -> Callable[[dict[str, Any]], Any]:
    def act(row: dict[str, Any], key: str, default: Any) -> Any:
        return activity.get(row["id"], {}).get(key) or default

    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "name": lambda r: (r["name"], r["account"]),
        "account": lambda r: (r["account"], r["name"]),
        "trigger": lambda r: (r["trigger"], r["fires"], r["name"]),
        "state": lambda r: (not r["enabled"], r["drifted"], r["name"]),
        "last_sent": lambda r: (act(r, "lastSent", ""), r["name"]),
        "sent": lambda r: (act(r, "sent", 0), r["name"]),
        "dead": lambda r: (act(r, "dead", 0), r["name"]),
    }
    return keys[sort]


def event_page(rows: list[dict[str, Any]], activity: dict[str, dict[str, Any]],
               query: EventQuery, page_size: int = PAGE_SIZE) -> EventPage:
    """Filter, sort and cut one page; only that page's rows get their activity."""
    needle = query.q.lower()
    chosen = [row for row in rows
              if (not query.account or row["account"] == query.account)
              and (not query.trigger or row["trigger"] == query.trigger)
              and (not query.state or query.state in row["states"])
              and (not needle or needle in row["name"] or needle in row["id"])]
    chosen.sort(key=_sort_key(query.sort, activity), reverse=query.desc)
    pages = max(1, -(-len(chosen) // page_size))
    page = min(query.page, pages)
    start = (page - 1) * page_size
    return EventPage([event_row(row, activity.get(row["id"]))
                      for row in chosen[start:start + page_size]], len(chosen), page, pages,
                     sorted({row["account"] for row in rows}))


def coverage_rows(coverage: EventCoverage | None, sends: list[str]) -> list[dict[str, Any]]:
    """Match-key coverage (``services.coverage``): for each key the event sends or that was
    seen, its share of the events sent over 24 hours and 7 days."""
    if coverage is None:
        return []
    day, week = coverage.window("24h"), coverage.window("7d")
    keys = [k for k in MATCH_KEYS if k in sends or week.count(k)]
    return [{"key": k, "day": day.share(k), "week": week.share(k), "daySent": day.sent,
             "weekSent": week.sent} for k in keys]


def event_detail(ev: LiveEvent, account: LiveAccount | None, activity: dict[str, Any] | None,
                 store: AgentReads | None, coverage: EventCoverage | None = None
                 ) -> dict[str, Any]:
    """The details panel: live spec, the user_data keys it sends (as ``convctl events show``),
    its Limited Data Use fields, match-key coverage, skip reasons, recent deliveries."""
    from reconciler.core.network_rules import is_hashed, sent_keys
    from reconciler.core.privacy import effective_options, payload_fields
    from reconciler.render.redact import redact

    spec = ev.spec.model_dump(mode="json", by_alias=True)
    sharing = ev.spec.data_sharing
    props = [p if isinstance(p, str) else f"{p.property} → {p.as_}" for p in sharing.properties]
    sends = sent_keys(spec)  # what the event's network is sent, as the plan says (R15)
    return {**event_row(base_row(ev), activity), "labels": dict(sorted(ev.labels.items())),
            "api": ev.api, "createdAt": ev.created_at, "updatedAt": ev.updated_at,
            "spec": redact(spec), "properties": props,
            "sends": [(key, is_hashed(key, ev.spec.destination)) for key in sends],
            "coverage": coverage_rows(coverage, sends),
            "ldu": payload_fields(effective_options(ev.spec, account.spec if account else None))
            if ev.spec.destination == "meta" else {},  # Limited Data Use is Meta's
            "skips": sorted((activity or {}).get("skips", {}).items(), key=lambda kv: -kv[1]),
            "deliveries": store.deliveries(ev.id, 15) if store else []}


# -- dead letters -------------------------------------------------------------------------

def dead_letter_view(store: AgentReads | None, events: dict[str, LiveEvent]
                     ) -> dict[str, Any] | None:
    """Dead letters grouped by reason, then by event, with the network's latest message."""
    if store is None:
        return None
    reasons: dict[str, dict[str, Any]] = {}
    for group in store.dead_letter_groups():
        ev = events.get(group["conversionEventId"])
        label = f"{ev.account}/{ev.name}" if ev else f"{group['conversionEventId']} (deleted)"
        reason = reasons.setdefault(group["reason"] or "unknown",
                                    {"reason": group["reason"] or "unknown", "count": 0,
                                     "groups": []})
        reason["count"] += group["count"]
        reason["groups"].append({**group, "event": label})
    ordered = sorted(reasons.values(), key=lambda r: (-r["count"], r["reason"]))
    return {"reasons": ordered, "total": sum(r["count"] for r in ordered)}
