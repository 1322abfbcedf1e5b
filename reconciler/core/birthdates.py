"""Dates of birth to Meta's ``YYYYMMDD`` (capi-contract.md ``db``).

Meta accepts "a range of month, day and year combinations, with or without punctuation". A value
is read as its first three groups of digits, whatever separates them (``12 31 1990``,
``1990_12_31``, ``12:31:1990``, ``1990|12|31``, ``12-31/1990``) and whatever text surrounds them
(``Born: 31.12.1990``, ``1990-12-31T00:00:00Z``); eight digits alone are ``YYYYMMDD`` (or
``MMDDYYYY``/``DDMMYYYY``); a month name in one of several languages (``16 Feb 1997``,
``February 16, 1997``, ``16. März 1997``) stands for the month.

The year is the four-digit group, first or last, from 1900 to the current year; two-digit years
are dropped (their century is a guess). With the year first the order is year-month-day. With
the year last, a number over 12 tells the day; when both could be the month the date order
decides: ``mdy`` (month first) or ``dmy`` (day first). A date that does not exist, or lies in the
future, is dropped.

The date order of an account is its ``dateOrder`` or, when not set, the order of the short date
format CLDR gives the region of its default calling code (``1`` -> US -> ``mdy``, ``44`` -> GB ->
``dmy``, ``86`` -> CN -> ``ymd``, treated as month first when the year is last); ``mdy`` without
either.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

from reconciler.core.places import fold

_DIGITS = re.compile(r"[0-9]+")
_WORDS = re.compile(r"[^\W\d_]+")
_MIN_YEAR = 1900
_MONTH_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl")


@lru_cache(maxsize=1)
def _months() -> dict[str, int]:
    """Folded month name or abbreviation -> 1..12; a name meaning two months is left out."""
    from babel import Locale

    found: dict[str, set[int]] = {}
    for language in _MONTH_LANGUAGES:
        months = Locale.parse(language).months
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, name in months[context][width].items():
                    found.setdefault(fold(name), set()).add(number)
    found.setdefault("sept", set()).add(9)
    return {name: next(iter(numbers)) for name, numbers in found.items()
            if name and len(numbers) == 1}


@lru_cache(maxsize=256)
def date_order_for_calling_code(code: str | None) -> str:
    """``mdy``/``dmy``/``ymd`` from CLDR's short date format of the calling code's region."""
    if not code or not code.isdigit():
        return "mdy"
    import phonenumbers
    from babel import Locale, UnknownLocaleError

    region = phonenumbers.region_code_for_country_code(int(code))
    try:
        pattern = Locale.parse(f"und_{region}").date_formats["short"].pattern
    except (UnknownLocaleError, ValueError, KeyError):
        return "mdy"
    positions = {part: pattern.find(part) for part in ("y", "M", "d")}
    if min(positions.values()) < 0:
        return "mdy"
    if positions["y"] < min(positions["M"], positions["d"]):
        return "ymd"
    return "dmy" if positions["d"] < positions["M"] else "mdy"


def _ordered(a: int, b: int, order: str) -> tuple[int, int]:
    """(month, day) from the two numbers before a trailing year."""
    if a > 12:
        return b, a
    if b > 12:
        return a, b
    return (b, a) if order == "dmy" else (a, b)


def _from_groups(groups: list[str], order: str) -> tuple[int, int, int] | None:
    if len(groups) == 1 and len(groups[0]) == 8:
        g = groups[0]
        first = _valid(int(g[:4]), int(g[4:6]), int(g[6:]))
        if first is not None:
            return first
        groups = [g[:2], g[2:4], g[4:]]
    if len(groups) < 3:
        return None
    a, b, c = groups[:3]
    if len(a) == 4 and len(b) <= 2 and len(c) <= 2:
        month, day = int(b), int(c)
        if month > 12:
            month, day = day, month
        return _valid(int(a), month, day)
    if len(c) == 4 and len(a) <= 2 and len(b) <= 2:
        month, day = _ordered(int(a), int(b), order)
        return _valid(int(c), month, day)
    return None


def _with_month_name(text: str, groups: list[str]) -> tuple[int, int, int] | None:
    if len(groups) != 2:
        return None
    months = _months()
    for word in _WORDS.findall(text):
        month = months.get(fold(word))
        if month is not None:
            break
    else:
        return None
    a, b = groups
    if len(a) <= 2 and len(b) == 4:
        return _valid(int(b), month, int(a))
    if len(a) == 4 and len(b) <= 2:
        return _valid(int(a), month, int(b))
    return None


def _valid(year: int, month: int, day: int) -> tuple[int, int, int] | None:
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    return (year, month, day) if year >= _MIN_YEAR and born <= date.today() else None


def birth_date(value: str, order: str = "mdy") -> str | None:
    """``YYYYMMDD`` of a date of birth, or None when it cannot be read or cannot be one."""
    text = value if value.isascii() else unicodedata.normalize("NFKC", value)
    groups = _DIGITS.findall(text)
    ymd = (_from_groups(groups, order) if len(groups) != 2
           else _with_month_name(text, groups))
    if ymd is None:
        return None
    return f"{ymd[0]:04d}{ymd[1]:02d}{ymd[2]:02d}"
