"""Country and state names to the codes Meta hashes (capi-contract.md: ``country``, ``st``).

Countries: ISO 3166-1 alpha-2, lowercase. The input is folded to its letters (accents dropped,
case folded, everything that is not a letter removed: ``U.S.``, ``(US)`` and ``US!`` are ``us``)
and looked up in one table built at first use from

1. pycountry: alpha-2 and alpha-3 codes, names, official and common names;
2. a small alias table for names no standard lists (``UAE``, ``Holland``, ``Great Britain``,
   ``Ivory Coast``, ``Russia``, ``Korea`` ...);
3. CLDR territory names in the languages of ``_LANGUAGES`` through Babel's locale data
   (``Deutschland``, ``España``, ``México``, ``Brasil``, ``Türkiye``, ``Россия``, ``日本`` ...).

Earlier sources win a clash. A leading ``the`` is ignored (``The Netherlands``). An unknown name
is dropped: a code is never guessed from its first letters (``UAE`` is not Ukraine).

States: a 2-letter value is kept; otherwise US state and Canadian province names (pycountry
subdivisions), USPS and AP-style abbreviations (``Calif.``, ``Mass.``, ``Fla.``, ``D.C.``) and a
``state`` prefix or suffix (``CaliforniaState``, ``State of New York``) map to the 2-letter code.
Other values are lowercased without punctuation or spaces (Meta's rule outside the US).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pycountry

# Languages whose CLDR territory names are looked up (most CRM exports come from these).
_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "sv", "da", "nb", "fi", "cs",
              "hu", "ro", "tr", "ru", "uk", "el", "he", "ar", "ja", "zh", "ko", "id", "vi", "th",
              "hi")

_COUNTRY_ALIASES = {
    "uae": "ae", "emirates": "ae", "uk": "gb", "greatbritain": "gb", "britain": "gb",
    "england": "gb", "scotland": "gb", "wales": "gb", "northernireland": "gb", "usa": "us",
    "america": "us", "unitedstatesofamerica": "us", "holland": "nl", "russia": "ru",
    "turkey": "tr", "korea": "kr", "southkorea": "kr", "northkorea": "kp", "ivorycoast": "ci",
    "macedonia": "mk", "vatican": "va", "vaticancity": "va", "palestine": "ps", "brunei": "bn",
    "curacao": "cw", "czechrepublic": "cz", "burma": "mm", "swaziland": "sz", "capeverde": "cv",
    "easttimor": "tl", "drc": "cd", "drcongo": "cd", "democraticrepublicofcongo": "cd",
    "republicofcongo": "cg", "laos": "la", "syria": "sy", "iran": "ir", "moldova": "md",
    "bolivia": "bo", "venezuela": "ve", "tanzania": "tz", "vietnam": "vn", "taiwan": "tw",
    "hongkong": "hk", "macau": "mo", "micronesia": "fm", "saintkitts": "kn", "stkitts": "kn",
    "stlucia": "lc", "stvincent": "vc", "trinidad": "tt", "bosnia": "ba", "kyrgyzstan": "kg",
}

# USPS codes come from pycountry; these are the AP-style and other common abbreviations.
_STATE_ABBREVIATIONS = {
    "ala": "al", "ariz": "az", "ark": "ar", "calif": "ca", "cal": "ca", "colo": "co",
    "conn": "ct", "del": "de", "fla": "fl", "flor": "fl", "ill": "il", "ind": "in", "kan": "ks",
    "kans": "ks", "mass": "ma", "mich": "mi", "minn": "mn", "miss": "ms", "mont": "mt",
    "neb": "ne", "nebr": "ne", "nev": "nv", "okla": "ok", "ore": "or", "oreg": "or",
    "penn": "pa", "penna": "pa", "tenn": "tn", "tex": "tx", "wash": "wa", "wis": "wi",
    "wisc": "wi", "wyo": "wy", "wva": "wv", "washingtondc": "dc", "washdc": "dc",
    "newfoundland": "nl", "pei": "pe", "alta": "ab", "sask": "sk", "man": "mb", "que": "qc",
    "ont": "on",
}


def fold(value: str) -> str:
    """The letters of ``value``, case folded, accents dropped (``Curaçao`` -> ``curacao``)."""
    if value.isascii():
        return "".join(c for c in value.lower() if c.isalpha())
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if c.isalpha())


def _add(table: dict[str, str], name: str | None, code: str) -> None:
    key = fold(name) if name else ""
    if key:
        table.setdefault(key, code)


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Folded name -> alpha-2 (built once, at first use)."""
    table: dict[str, str] = {}
    codes = set()
    for country in pycountry.countries:
        code = str(country.alpha_2).lower()
        codes.add(code)
        table[code] = code
        table.setdefault(str(country.alpha_3).lower(), code)
        for attr in ("name", "official_name", "common_name"):
            _add(table, getattr(country, attr, None), code)
    for alias, code in _COUNTRY_ALIASES.items():
        table.setdefault(alias, code)
    _add_cldr_names(table, codes)
    return table


def _add_cldr_names(table: dict[str, str], codes: set[str]) -> None:
    try:
        from babel import Locale
    except ImportError:  # pragma: no cover - Babel is a dependency; the table still works
        return
    for language in _LANGUAGES:
        for territory, name in Locale.parse(language).territories.items():
            code = territory.lower()
            if code in codes:
                _add(table, name, code)


@lru_cache(maxsize=8192)
def country_code(value: str) -> str | None:
    """ISO alpha-2, lowercase (``United States``, ``U.S.``, ``Deutschland`` -> ``us``/``de``);
    None for a name no table knows."""
    key = fold(value)
    if not key:
        return None
    table = _countries()
    found = table.get(key)
    if found is None and key.startswith("the"):
        found = table.get(key[3:])
    return found


@lru_cache(maxsize=1)
def _states() -> dict[str, str]:
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions:
        if sub.country_code in ("US", "CA"):
            code = sub.code.split("-", 1)[1].lower()
            _add(table, sub.name, code)
    table["virginislands"] = "vi"
    for abbreviation, code in _STATE_ABBREVIATIONS.items():
        table.setdefault(abbreviation, code)
    return table


def state_code(compact: str) -> str | None:
    """st from a value already lowercased without punctuation or spaces."""
    if len(compact) == 2 or not compact:
        return compact or None
    table = _states()
    found = table.get(compact)
    if found is None and compact.endswith("state"):
        found = table.get(compact[:-5])
    if found is None and compact.startswith("stateof"):
        found = table.get(compact[7:])
    return found or compact
