"""Moments on a command line: ISO 8601 with a zone, or a duration back from now (``24h``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, now: datetime) -> datetime:
    """``24h``/``90m``/``7d``/``2w`` (that long before ``now``) or an ISO 8601 time with a
    zone (``2026-11-20T14:00:00Z``, ``...+01:00``); ``ValueError`` with a one-line reason."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        try:
            return now - timedelta(**{_UNITS[duration.group(2)]: int(duration.group(1))})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (e.g. 24h, 90m, 7d) nor an ISO 8601 "
                         "time (e.g. 2026-11-20T14:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no zone: add Z or an offset (e.g. +01:00)")
    return moment
