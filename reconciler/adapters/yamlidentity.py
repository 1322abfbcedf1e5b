"""The identity of a manifest document the loader refused: its ``kind`` and ``metadata.name``.

A refused document (a duplicate key, a forbidden tag, an alias bomb, ...) is reported once; its
identity is kept so that what refers to it (an event naming its account) is not reported again.
It is read from the document's events once more, without a node tree: a refused document may be
the largest the file limit allows.
"""

from __future__ import annotations

from typing import Any

import yaml

_PARSER: Any = getattr(yaml, "CBaseLoader", yaml.SafeLoader)
_Scalar = yaml.ScalarEvent
_Alias = yaml.AliasEvent
_MapStart = yaml.MappingStartEvent
_MapEnd = yaml.MappingEndEvent
_SeqStart = yaml.SequenceStartEvent
_SeqEnd = yaml.SequenceEndEvent


def identity(text: str) -> dict[str, Any]:
    """``kind`` and ``metadata.name`` of a refused document, when they are scalars (the text as
    written, whatever its tag; aliases followed; the last of duplicate keys wins)."""
    try:
        top = _outline(text)
    except yaml.YAMLError:
        return {}
    out: dict[str, Any] = {}
    if not isinstance(top, dict):
        return out
    if isinstance(top.get("kind"), str):
        out["kind"] = top["kind"]
    metadata = top.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        out["metadata"] = {"name": metadata["name"]}
    return out


_OUTLINED = {"kind", "metadata", "name"}
_KEY = object()  # a mapping frame waiting for its next key


def _outline(text: str) -> Any:
    """One document read again from its events, no node tree: a scalar is its text, a mapping
    a dict of its ``kind``/``metadata``/``name`` entries, a sequence ``()``."""
    anchors: dict[str, Any] = {}
    stack: list[list[Any]] = []  # [container, pending key or _KEY]
    root: Any = None
    event: Any
    for event in yaml.parse(text, Loader=_PARSER):
        kind = type(event)
        if kind is _MapStart or kind is _SeqStart:
            container: Any = {} if kind is _MapStart else ()
            if event.anchor is not None:  # registered now: an alias inside sees it
                anchors[event.anchor] = container
            stack.append([container, _KEY])
            continue
        if kind is _MapEnd or kind is _SeqEnd:
            value = stack.pop()[0]
        elif kind is _Scalar:
            value = event.value
            if event.anchor is not None:
                anchors[event.anchor] = value
        elif kind is _Alias:
            value = anchors.get(event.anchor)
        else:
            continue
        if not stack:
            root = value
        elif isinstance(stack[-1][0], dict):
            frame = stack[-1]
            if frame[1] is _KEY:
                frame[1] = value
            else:
                if isinstance(frame[1], str) and frame[1] in _OUTLINED:
                    frame[0][frame[1]] = value
                frame[1] = _KEY
    return root
