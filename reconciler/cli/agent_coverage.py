"""Match-key coverage as text (``agent status``, ``agent quality``): shares in whole percent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.coverage import MATCH_KEYS

HEADER = "Match-key coverage (share of sent events carrying each key; last 24 h, last 7 d):"
_WIDTH = max(len(key) for key in MATCH_KEYS)


def percent(share: float) -> str:
    return f"{round(share * 100)}%"


def coverage_lines(coverage: Sequence[Mapping[str, Any]]) -> list[str]:
    """One block per event (``EventCoverage.to_json`` shape): sent counts, then every key
    carried in the last 7 days with its two shares; keys never carried are left out."""
    if not coverage:
        return []
    lines = [HEADER]
    for item in coverage:
        day, week = item["windows"]["24h"], item["windows"]["7d"]
        gone = "" if item.get("live", True) else " (no longer in the live state)"
        lines.append(f"  {item['event']}{gone}: {day['sent']} sent in 24 h, "
                     f"{week['sent']} in 7 d")
        keys = [k for k in MATCH_KEYS if week["keys"][k]["count"]]
        lines += [f"    {k:<{_WIDTH}}  {percent(day['keys'][k]['share']):>4}  "
                  f"{percent(week['keys'][k]['share']):>4}" for k in keys]
        if not keys:
            lines.append("    (no match key carried)")
    return lines
