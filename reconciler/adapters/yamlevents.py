"""libyaml's events as every tier of the manifest loader reads them, and how a scalar is typed.

The positioned builder (``yamlparse``), the lean pass (``yamllean``) and the rapidyaml tier
(``yamlfast``) share: the event parser, its event classes, the node and depth limits, and the
typing of a scalar event with its refusals (unknown or Python tags, merge keys, numbers that
YAML 1.1 and 1.2 read differently). A plain scalar's tag is resolved only when its first
character could make it something other than text, once per distinct text.

YAML 1.1 (what libyaml resolves) and YAML 1.2 read some plain numbers differently: ``04412345``
is octal (1184997) in 1.1 and decimal in 1.2, ``1:20`` is base 60 (80) in 1.1 and text in 1.2.
A manifest must mean one thing in every tool, so numbers are plain decimal only: octal, base 60,
binary, hexadecimal and ``_`` separators are refused (E011) with what YAML 1.1 would have read.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# The event parser: libyaml's when PyYAML has it (CBaseLoader is CParser + no-op resolvers).
Parser: Any = getattr(yaml, "CBaseLoader", yaml.SafeLoader)

MAX_NODES = 200_000  # per document, counting every alias expansion
MAX_DEPTH = 64

STR = "tag:yaml.org,2002:str"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
# YAML 1.1 types of the plain scalars `=` and `<<`; as values (and `=` as a key) they are text.
VALUE = "tag:yaml.org,2002:value"
MERGE = "tag:yaml.org,2002:merge"
SCALAR_TAGS = {STR, _INT, _FLOAT, "tag:yaml.org,2002:bool", _NULL,
               "tag:yaml.org,2002:timestamp"}
TEXT_TAGS = {STR, VALUE, MERGE}
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")

Scalar = yaml.ScalarEvent
MapStart = yaml.MappingStartEvent
MapEnd = yaml.MappingEndEvent
SeqStart = yaml.SequenceStartEvent
SeqEnd = yaml.SequenceEndEvent
Alias = yaml.AliasEvent
DocEnd = yaml.DocumentEndEvent

_resolver: Any = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
# A plain scalar starting with any other character is text, whatever follows.
MAYBE_TYPED = frozenset(yaml.resolver.Resolver.yaml_implicit_resolvers)
_PLAIN_TAGS: dict[str, str] = {}  # plain scalar text -> resolved tag, shared by a run's files
_VALUES: dict[tuple[str, str], Any] = {}  # (tag, text) -> constructed int/float/bool/null/date
_CACHE_MAX = 100_000
_MISSING = object()


class Refused(Exception):
    """What a manifest must not contain: a diagnostic code, its message and where."""

    def __init__(self, code: str, message: str, mark: Any) -> None:  # a yaml Mark or Position
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark


def plain_tag(text: str) -> str:
    """The tag YAML 1.1 resolves for ``text`` written as a plain scalar."""
    tag = _PLAIN_TAGS.get(text)
    if tag is None:
        if len(_PLAIN_TAGS) >= _CACHE_MAX:
            _PLAIN_TAGS.clear()
        tag = _PLAIN_TAGS[text] = _resolver.resolve(yaml.ScalarNode, text, (True, False))
    return tag


def scalar_tag(event: Any) -> str:
    """The tag PyYAML's composer gives a scalar event (``!`` and no tag mean: resolve)."""
    tag: str | None = event.tag
    if tag is not None and tag != "!":
        return tag
    if event.implicit[0] and event.value[:1] in MAYBE_TYPED:
        return plain_tag(event.value)
    return STR


def scalar(event: Any) -> Any:
    """A scalar event's value (text, number, bool, null or date), or ``Refused``."""
    tag = scalar_tag(event)
    if tag in TEXT_TAGS:
        return event.value
    if tag not in SCALAR_TAGS:
        raise Refused("E004", f"tag '{short_tag(tag)}' is not allowed in manifests",
                      event.start_mark)
    text = event.value
    value = _VALUES.get((tag, text), _MISSING)
    if value is _MISSING:
        try:
            value = _constructor.yaml_constructors[tag](_constructor, yaml.ScalarNode(tag, text))
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise Refused("E002", f"invalid {short_tag(tag)} value",
                          event.start_mark) from exc
        if tag in (_INT, _FLOAT):
            _check_decimal(tag, text, value, event.start_mark)
        if len(_VALUES) >= _CACHE_MAX:
            _VALUES.clear()
        _VALUES[(tag, text)] = value
    return value


def _check_decimal(tag: str, raw: str, value: float, mark: Any) -> None:
    """Refuse a number not written in plain decimal (YAML 1.1 and 1.2 may disagree on it)."""
    text = raw.strip()
    if tag == _INT and _DECIMAL_INT.fullmatch(text):
        return
    if tag == _FLOAT and ":" not in text and "_" not in text:
        return
    read = repr(value)[:40]
    digits = text.lstrip("+-").lower()
    if ":" in text:
        why = f"a base-60 number: YAML 1.1 reads it as {read}, YAML 1.2 as text"
    elif "_" in text:
        why = f"a number with '_' separators: YAML 1.1 reads it as {read}, YAML 1.2 as text"
    elif digits.startswith("0b"):
        why = f"a binary number: YAML 1.1 reads it as {read}, YAML 1.2 as text"
    elif digits.startswith("0x"):
        why = f"a hexadecimal number ({read})"
    else:
        why = (f"an octal number: YAML 1.1 reads it as {read}, YAML 1.2 as "
               f"{int(text, 10) if text.lstrip('+-').isdigit() else 'text'}")
    written = text if len(text) <= 40 else text[:40] + "..."
    raise Refused("E011", f"'{written}' is {why}; write numbers in plain decimal, or quote the "
                  "value if it is text", mark)


def is_empty(event: Any) -> bool:
    """A document with nothing in it: a ``---`` followed by comments or blank lines only."""
    return (type(event) is Scalar and event.value == "" and not event.style
            and scalar_tag(event) == _NULL)


def short_tag(tag: str) -> str:
    """``!!int`` for ``tag:yaml.org,2002:int``: how a tag is shown in a diagnostic."""
    return tag.replace("tag:yaml.org,2002:", "!!")
