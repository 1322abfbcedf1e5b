"""The loader's fast path: a file's data without its positions, which are parsed on demand.

Most manifests are plain: untagged scalars and collections, no anchors or aliases, unique plain
keys, shallow, well-formed. For those, building the data alone costs about 1.1x libyaml's event
stream, against 1.6x with every key's and value's position (a 10,000-event plan does not need
one of them). So ``parse_documents`` (``yamlparse``) tries this lean builder over the file
(after rapidyaml, ``yamlfast``, declined a large one; ``lazy_documents`` serves both);
each document's ``SourceMap`` is lazy, and the first one asked for a position parses the whole
file again, the positioned way, filling every document's maps at once. Anything else (a tag, an
anchor or alias, a duplicate or non-plain key, a merge key, a refused value, deep nesting, a big
document, a YAML error) stops the lean pass: the file is then parsed the positioned way only, so
every diagnostic, data and position is exactly the positioned builder's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from reconciler.adapters import yamlevents as ev
from reconciler.core.source import Path, Position, RawDocument, SourceMap
from reconciler.diagnostics import Diagnostics

# Far inside the positioned builder's limits, so it never refuses what the lean pass accepted.
_DEPTH = ev.MAX_DEPTH // 2
_NODES = ev.MAX_NODES // 2

_Scalar, _MapStart, _MapEnd = ev.Scalar, ev.MapStart, ev.MapEnd
_SeqStart, _SeqEnd = ev.SeqStart, ev.SeqEnd
_MAYBE_TYPED = ev.MAYBE_TYPED
_scalar = ev.scalar
Maps = tuple[dict[Path, Position], dict[Path, Position]]
Positioned = Callable[[str, str, Diagnostics], list[RawDocument]]


class _Unusual(Exception):
    """Not the plain case: parse this file the positioned way."""


class _Lean:
    """Plain data from one file's events; keys and short values shared, as the full builder."""

    def __init__(self, get: Callable[[], Any]) -> None:
        self.get = get
        self.share: Callable[[Any, Any], Any] = {}.setdefault
        self.nodes = 0

    def value(self, event: Any, depth: int) -> Any:
        kind = type(event)
        if kind is _Scalar and event.tag is None and event.anchor is None:
            text = event.value
            if event.implicit[0] and text[:1] in _MAYBE_TYPED:
                return _scalar(event)  # a number, bool, null or date; may be refused
            return self.share(text, text) if len(text) < 32 else text
        if (kind is not _MapStart and kind is not _SeqStart) or depth >= _DEPTH:
            raise _Unusual
        if event.tag is not None or event.anchor is not None:
            raise _Unusual
        out = self.mapping(depth + 1) if kind is _MapStart else self.sequence(depth + 1)
        self.nodes += len(out)
        if self.nodes > _NODES:
            raise _Unusual
        return out

    def mapping(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get, share, value = self.get, self.share, self.value
        while True:
            event = get()
            kind = type(event)
            if kind is _MapEnd:
                return out
            if kind is not _Scalar or event.tag is not None or event.anchor is not None:
                raise _Unusual
            key = event.value
            if key in out or key == "<<":
                raise _Unusual
            event = get()
            if type(event) is _Scalar and event.tag is None and event.anchor is None:
                text = event.value  # the common case inline: a plain value
                if event.implicit[0] and text[:1] in _MAYBE_TYPED:
                    out[share(key, key)] = _scalar(event)
                else:
                    out[share(key, key)] = share(text, text) if len(text) < 32 else text
            else:
                out[share(key, key)] = value(event, depth)

    def sequence(self, depth: int) -> list[Any]:
        out: list[Any] = []
        get, value = self.get, self.value
        while True:
            event = get()
            if type(event) is _SeqEnd:
                return out
            out.append(value(event, depth))


class _Positions:
    """One file's positions, parsed the first time any of its documents needs one."""

    def __init__(self, text: str, file: str, count: int, positioned: Positioned) -> None:
        self.text, self.file, self.count, self.positioned = text, file, count, positioned
        self.maps: list[Maps] | None = None

    def of(self, index: int) -> Maps:
        if self.maps is None:
            docs = self.positioned(self.text, self.file, Diagnostics())
            if len(docs) != self.count:  # the two builders disagree: a bug, not bad input
                raise RuntimeError(f"{self.file}: {len(docs)} positioned documents, "
                                   f"{self.count} lean ones")
            self.maps = [(doc.source.values, doc.source.keys) for doc in docs]
            self.text = ""
        return self.maps[index]


def lean_documents(text: str, file: str, positioned: Positioned) -> list[RawDocument] | None:
    """Every document of ``text`` with lazy positions, or None: parse it the positioned way."""
    try:
        parser = ev.Parser(text)
    except UnicodeEncodeError:
        return None
    datas: list[Any] = []
    try:
        lean = _Lean(parser.get_event)
        get, check = parser.get_event, parser.check_event
        get()  # the stream start
        while not check(yaml.StreamEndEvent):
            get()  # the document start
            root = get()
            if ev.is_empty(root):
                get()
                continue
            lean.nodes = 1
            datas.append(lean.value(root, 0))
            get()  # the document end
    except (_Unusual, ev.Refused, yaml.YAMLError):
        return None
    finally:
        parser.dispose()
    return lazy_documents(datas, text, file, positioned)


def lazy_documents(datas: list[Any], text: str, file: str,
                   positioned: Positioned) -> list[RawDocument]:
    """The documents of ``text`` from their data, positions parsed when first asked for."""
    positions = _Positions(text, file, len(datas), positioned)
    return [RawDocument(data, SourceMap(file, locate=_locator(positions, i)))
            for i, data in enumerate(datas)]


def _locator(positions: _Positions, index: int) -> Callable[[], Maps]:
    return lambda: positions.of(index)
