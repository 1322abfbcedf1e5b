"""Match-key coverage: the share of sent events that carried each user_data key (pure).

Coverage is ours, counted from the payloads the agent sent; it is not Meta's Event Match
Quality (which ``convctl agent quality`` reads from Meta). A payload's keys are kept as one
small integer, a bit per key of ``MATCH_KEYS`` (``key_mask``), computed once when the payload
is queued. Sent events are counted in hourly buckets per conversion event and key mask
(``Bucket``); a window (the last 24 hours, the last 7 days) sums the buckets of its hours, and a
key's count is the sum over the masks that hold its bit. So a bucket row stays small whatever
the number of keys, and the two windows come from one read.

A window is whole hours: "the last 24 hours" is the current hour and the 23 before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

# The keys whose coverage is counted, in the order they are shown (capi-contract.md).
MATCH_KEYS: Final = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge",
                     "external_id", "lead_id", "fbc", "fbp", "client_ip_address",
                     "client_user_agent")
_BITS: Final = {key: 1 << index for index, key in enumerate(MATCH_KEYS)}
WINDOWS: Final = {"24h": 24, "7d": 7 * 24}  # window name -> hours
KEEP_HOURS: Final = WINDOWS["7d"]  # buckets older than the longest window can go
_MASKS: dict[tuple[str, ...], int] = {}  # key_mask's cache: user_data keys -> mask
_MASKS_MAX: Final = 4096


def key_mask(user_data: Mapping[str, Any] | None) -> int:
    """The bits of the ``MATCH_KEYS`` present in this user_data (other keys are ignored).

    Presence is what counts: payloads never carry a key without a value (the builder leaves
    such keys out, and Meta refuses empty values, so a sent event cannot have one). Cached by
    the keys in their order: payloads of one event share a handful of key sets, so this is a
    tuple and one lookup per payload on the hot path."""
    return mask_of(tuple(user_data)) if user_data else 0


def mask_of(keys: tuple[str, ...]) -> int:
    """The bits of these match keys (what a network's ``match_keys`` names); other names are
    ignored. Cached like ``key_mask``."""
    if not keys:
        return 0
    mask = _MASKS.get(keys)
    if mask is None:
        if len(_MASKS) >= _MASKS_MAX:
            _MASKS.clear()
        mask = _MASKS[keys] = sum(_BITS.get(key, 0) for key in set(keys))
    return mask


def keys_of(mask: int) -> tuple[str, ...]:
    return tuple(key for key in MATCH_KEYS if mask & _BITS[key])


def hour_of(moment: datetime | float) -> int:
    """Hours since the epoch (the bucket a moment falls in)."""
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return int(seconds // 3600)


@dataclass(frozen=True, slots=True)
class Bucket:
    """``sent`` events of a conversion event, sent in ``hour``, that carried the keys of
    ``mask``."""

    conversion_event_id: str
    hour: int
    mask: int
    sent: int


@dataclass(frozen=True, slots=True)
class WindowCoverage:
    """One window of one event: how many events were sent and how many carried each key."""

    sent: int = 0
    keys: Mapping[str, int] = field(default_factory=dict)

    def count(self, key: str) -> int:
        return self.keys.get(key, 0)

    def share(self, key: str) -> float:
        """The share of sent events that carried ``key``, in [0, 1] (0 when none was sent)."""
        return self.count(key) / self.sent if self.sent else 0.0

    def shares(self) -> dict[str, float]:
        return {key: self.share(key) for key in MATCH_KEYS}

    def to_json(self) -> dict[str, Any]:
        return {"sent": self.sent,
                "keys": {key: {"count": self.count(key), "share": round(self.share(key), 4)}
                         for key in MATCH_KEYS}}


@dataclass(frozen=True, slots=True)
class EventCoverage:
    """Coverage of one conversion event; ``ref`` is ``ACCOUNT/NAME`` (the id when the event is
    no longer in the live state, ``live`` False)."""

    conversion_event_id: str
    ref: str
    live: bool
    windows: Mapping[str, WindowCoverage]

    def window(self, name: str) -> WindowCoverage:
        return self.windows.get(name) or WindowCoverage()

    def to_json(self) -> dict[str, Any]:
        return {"event": self.ref, "conversionEventId": self.conversion_event_id,
                "live": self.live,
                "windows": {name: self.window(name).to_json() for name in WINDOWS}}


def summarize(buckets: Iterable[Bucket], now_hour: int) -> dict[str, dict[str, WindowCoverage]]:
    """Per conversion event id and window name, the coverage of the buckets inside it."""
    sums: dict[str, dict[str, dict[int, int]]] = {}  # event -> window -> mask -> sent
    for bucket in buckets:
        age = now_hour - bucket.hour
        for name, hours in WINDOWS.items():
            if 0 <= age < hours:
                masks = sums.setdefault(bucket.conversion_event_id, {}).setdefault(name, {})
                masks[bucket.mask] = masks.get(bucket.mask, 0) + bucket.sent
    return {event: {name: _window(masks) for name, masks in windows.items()}
            for event, windows in sums.items()}


def combine(windows: Iterable[WindowCoverage]) -> WindowCoverage:
    """Several events' coverage of one window as one (sent and key counts added)."""
    sent, keys = 0, dict.fromkeys(MATCH_KEYS, 0)
    for window in windows:
        sent += window.sent
        for key in MATCH_KEYS:
            keys[key] += window.count(key)
    return WindowCoverage(sent, {k: n for k, n in keys.items() if n})


def _window(masks: Mapping[int, int]) -> WindowCoverage:
    keys = {key: sum(n for mask, n in masks.items() if mask & bit)
            for key, bit in _BITS.items()}
    return WindowCoverage(sum(masks.values()), {k: n for k, n in keys.items() if n})
