"""Country and state names to the codes Meta hashes (capi-contract.md: ``country``, ``st``).

Countries: ISO 3166-1 alpha-2, lowercase. The input is folded to its letters (accents dropped,
case folded, everything that is not a letter removed: ``U.S.``, ``(US)`` and ``US!`` are ``us``)
and looked up in one table built at first use from

1. pycountry: alpha-2 and alpha-3 codes, names, official and common names;
2. a small alias table for names no standard lists (``UAE``, ``Holland``, ``Great Britain``,
   ``Ivory Coast``, ``Russia``, ``Korea`` ...);
3. CLDR territory names in the languages of ``_LANGUAGES`` through Babel's locale data
   (``Deutschland``, ``España``, ``México``, ``Brasil``, ``Türkiye``, ``Россия``, ``日本`` ...).

Earlier sources win a clash; a CLDR name meaning two countries is left out. Leading ``the``,
``Republic of``, ``Kingdom of`` or ``State of`` are ignored when the whole name is unknown. An
unknown name is dropped: a code is never guessed from its first letters (``UAE`` is not
Ukraine).

States: a 2-letter value is kept; otherwise US state names (pycountry subdivisions), USPS and
AP-style abbreviations (``Calif.``, ``Mass.``, ``Fla.``, ``D.C.``) and a ``state`` prefix or
suffix (``CaliforniaState``, ``State of New York``) map to the 2-letter code. Other values are
lowercased without punctuation or spaces: Meta's rule for states outside the US (``Ontario`` ->
``ontario``, ``New South Wales`` -> ``newsouthwales``).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pycountry

# Languages whose CLDR territory names are looked up (most CRM exports come from these).
_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "sv", "da", "nb", "fi", "cs",
              "sk", "sl", "hr", "sr_Latn", "bg", "hu", "ro", "lt", "lv", "et", "is", "ga", "ca",
              "tr", "ru", "uk", "el", "he", "ar", "fa", "ja", "zh", "ko", "id", "ms", "vi", "th",
              "hi", "fil", "sw", "af")

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
    "stkittsandnevis": "kn", "stlucia": "lc", "stvincent": "vc", "trinidad": "tt",
    "bosnia": "ba", "kyrgyzstan": "kg", "koreasouth": "kr", "skorea": "kr", "koreanorth": "kp",
    "nkorea": "kp", "fyrom": "mk", "ksa": "sa", "saudi": "sa", "eire": "ie", "eeuu": "us",
    "nireland": "gb", "antigua": "ag", "greatbritainandnorthernireland": "gb",
}
# Leading words a name may carry (``The Netherlands``, ``Republic of Korea``).
_PREFIXES = ("the", "republicof", "kingdomof", "stateof")

# USPS codes come from pycountry; these are the AP-style and other common abbreviations.
_STATE_ABBREVIATIONS = {
    "ala": "al", "ariz": "az", "ark": "ar", "calif": "ca", "cal": "ca", "colo": "co",
    "conn": "ct", "del": "de", "fla": "fl", "flor": "fl", "ill": "il", "ind": "in", "kan": "ks",
    "kans": "ks", "mass": "ma", "mich": "mi", "minn": "mn", "miss": "ms", "mont": "mt",
    "neb": "ne", "nebr": "ne", "nev": "nv", "okla": "ok", "ore": "or", "oreg": "or",
    "penn": "pa", "penna": "pa", "tenn": "tn", "tex": "tx", "wash": "wa", "wis": "wi",
    "wisc": "wi", "wyo": "wy", "wva": "wv", "washingtondc": "dc", "washdc": "dc",
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
def _standard_countries() -> dict[str, str]:
    """Folded name -> alpha-2 from sources 1 and 2 (pycountry, aliases): built at first use.

    Earlier sources win, so a key found here means the same in the full table; the CLDR names
    (some 40 locales, about 0.15 s to load) are read only for a value this table does not know,
    and an agent whose contacts carry codes or English names never loads them."""
    table: dict[str, str] = {}
    for country in pycountry.countries:
        code = str(country.alpha_2).lower()
        table[code] = code
        table.setdefault(str(country.alpha_3).lower(), code)
        for attr in ("name", "official_name", "common_name"):
            _add(table, getattr(country, attr, None), code)
    for alias, code in _COUNTRY_ALIASES.items():
        table.setdefault(alias, code)
    return table


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Folded name -> alpha-2, every source (built once, at first use)."""
    table = dict(_standard_countries())
    _add_cldr_names(table, {str(c.alpha_2).lower() for c in pycountry.countries})
    return table


def _add_cldr_names(table: dict[str, str], codes: set[str]) -> None:
    """CLDR names of ISO countries; a name meaning two countries (``Kongo``) is left out."""
    try:
        from babel import Locale
    except ImportError:  # pragma: no cover - Babel is a dependency; the table still works
        return
    found: dict[str, set[str]] = {}
    for language in _LANGUAGES:
        for territory, name in Locale.parse(language).territories.items():
            code = territory.lower()
            if code in codes and (key := fold(name)):
                found.setdefault(key, set()).add(code)
    for key, meanings in found.items():
        if len(meanings) == 1:
            table.setdefault(key, next(iter(meanings)))


@lru_cache(maxsize=8192)
def country_code(value: str) -> str | None:
    """ISO alpha-2, lowercase (``United States``, ``U.S.``, ``Deutschland`` -> ``us``/``de``);
    None for a name no table knows."""
    key = fold(value)
    if not key:
        return None
    found = _standard_countries().get(key)
    if found is not None:
        return found
    table = _countries()
    found = table.get(key)
    for prefix in _PREFIXES:
        if found is None and key.startswith(prefix):
            found = table.get(key[len(prefix):])
    return found


@lru_cache(maxsize=1)
def _states() -> dict[str, str]:
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions:
        if sub.country_code == "US":
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
