"""The fake Graph API's Dataset Quality endpoint: ``GET /{version}/dataset_quality``.

Meta's documented shape: ``dataset_id`` (the pixel), ``fields`` in Graph's field syntax whose
root must be ``web{...}`` (``web{event_name,event_match_quality{composite_score,
match_key_feedback{identifier,coverage{percentage}},diagnostics{name,description,solution,
percentage}},event_coverage{percentage,goal_percentage}}``), the token as ``access_token`` or
``Authorization: Bearer``. The answer is ``{"web": [...]}``, one entry per event name, holding
only the fields asked for. Refusals are Graph envelopes: no token (104), a wrong one (190), an
unknown dataset (100/33), a missing or malformed ``fields`` or a field the edge does not have
(100).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

# The fields this edge has, as a tree (None: a leaf).
FieldTree = dict[str, "FieldTree | None"]
SCHEMA: FieldTree = {"web": {
    "event_name": None,
    "event_match_quality": {
        "composite_score": None,
        "match_key_feedback": {"identifier": None, "coverage": {"percentage": None}},
        "diagnostics": {"name": None, "description": None, "solution": None,
                        "percentage": None, "affected_event_count": None},
    },
    "event_coverage": {"percentage": None, "goal_percentage": None, "description": None},
    "acr": {"percentage": None, "description": None},
    "data_freshness": {"upload_frequency": None, "description": None},
    "dedupe_key_feedback": {"dedupe_key": None},
}}
PATH = re.compile(r"/(v\d+\.\d+)/dataset_quality")
_NAME = re.compile(r"\s*([A-Za-z_]+)")


class FieldError(ValueError):
    pass


def parse_fields(text: str) -> FieldTree:
    """Graph's ``a,b{c,d{e}}`` syntax as a tree; ``FieldError`` when malformed."""
    tree, pos = _parse(text, 0, top=True)
    if pos != len(text):
        raise FieldError(f"unexpected {text[pos:pos + 10]!r}")
    return tree


def _parse(text: str, pos: int, *, top: bool) -> tuple[FieldTree, int]:
    tree: FieldTree = {}
    while pos < len(text):
        match = _NAME.match(text, pos)
        if match is None:
            raise FieldError(f"expected a field name at {pos}")
        name, pos = match.group(1), match.end()
        child: FieldTree | None = None
        if text.startswith("{", pos):
            child, pos = _parse(text, pos + 1, top=False)
            if not text.startswith("}", pos):
                raise FieldError("a { is not closed")
            pos += 1
        tree[name] = child
        if text.startswith(",", pos):
            pos += 1
            continue
        if text.startswith("}", pos) and not top:
            return tree, pos
        if pos == len(text):
            break
        raise FieldError(f"unexpected {text[pos:pos + 10]!r}")
    if not top:
        raise FieldError("a { is not closed")
    return tree, pos


def asked_fields(text: str | None) -> FieldTree:
    """The ``fields`` parameter as a tree, checked against ``SCHEMA``; ``FieldError``."""
    if not text:
        raise FieldError("The parameter fields is required: ask for web{...}")
    asked = parse_fields(text)
    if set(asked) != {"web"} or asked["web"] is None:
        raise FieldError("fields must be web{...}")
    check_fields(asked, SCHEMA)
    return asked


def check_fields(asked: FieldTree, schema: FieldTree, path: str = "") -> None:
    for name, child in asked.items():
        if name not in schema:
            raise FieldError(f"Tried accessing nonexisting field ({path}{name})")
        below = schema[name]
        if child is not None:
            if below is None:
                raise FieldError(f"{path}{name} has no subfields")
            check_fields(child, below, f"{path}{name}.")


def project(value: Any, asked: FieldTree | None) -> Any:
    """Only the asked fields of ``value`` (lists item by item; a leaf or an object asked
    without subfields is returned whole)."""
    if asked is None:
        return value
    if isinstance(value, list):
        return [project(item, asked) for item in value]
    if isinstance(value, dict):
        return {k: project(v, asked[k]) for k, v in value.items() if k in asked}
    return value


def token_of(query: dict[str, str], authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query.get("access_token")


def parse_query(path: str) -> tuple[str, dict[str, str]]:
    url = urllib.parse.urlsplit(path)
    return url.path, dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
