"""Canonical formatting of manifest files with ruamel.yaml's round-trip mode (``convctl fmt``).

The canonical form: 2-space mappings, sequences indented under their key (``- `` at +2), ``---``
between documents, no leading ``---``, one trailing newline, no trailing spaces, keys of each
document in the models' field order (``apiVersion, kind, metadata, spec``; inside, the alias order
of the pydantic fields in ``core/models.py``; unknown keys keep their place after the known
ones). Everything else is kept as written: comments, quoting, flow ``{...}``/``[...]`` style,
free-form maps such as ``labels``. Lines are never wrapped.

Comments follow their key when keys move: a comment line belongs to the key below it, an
end-of-line comment to its own line. Comments at the start of a mapping (the file header with the
``# yaml-language-server: $schema=`` line included) stay at its start.

``dump_documents`` is the same emitter for generated documents (``convctl import``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml as pyyaml
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.tokens import CommentToken

from reconciler.core.models import KINDS, ConversionEvent, Metadata
from reconciler.diagnostics import Diagnostics, SourceLocation

WIDTH = 4096  # never wrap a line
FLOW_MAX = 100  # generated documents: a leaf collection goes flow style when it fits


def make_yaml() -> YAML:
    """The one configured round-trip emitter/parser."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = WIDTH
    y.explicit_start = False
    return y


# --- canonical key order, derived from the models -------------------------------------------

@dataclass(frozen=True)
class Shape:
    """Known keys of a mapping, in order, and the shape of each key's value (if a model)."""

    order: tuple[str, ...]
    children: dict[str, Shape]


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _models_in(arg)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        yield from _models_in(getattr(meta, "annotation", None))


@functools.cache
def shape_of(model: type[BaseModel]) -> Shape:
    """Key order of ``model`` (field aliases, declaration order) and of its nested models."""
    order: list[str] = []
    children: dict[str, Shape] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        order.append(key)
        found = list(_models_in(info.annotation))
        if len(found) == 1:  # a model, a list of models, an optional model
            children[key] = shape_of(found[0])
    return Shape(tuple(order), children)


def document_shape(doc: Any) -> Shape:
    """The shape for a document: by its ``kind``; an unknown kind still orders the top level."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is not None:
        return shape_of(model)
    top = shape_of(ConversionEvent)
    return Shape(top.order, {"metadata": shape_of(Metadata)})


def _reorder(node: Any, shape: Shape) -> bool:
    """Put ``node``'s keys in canonical order, recursively; True when anything moved."""
    moved = False
    if isinstance(node, CommentedSeq):
        return any([_reorder(item, shape) for item in node])
    if not isinstance(node, CommentedMap):
        return False
    keys = list(node.keys())
    wanted = [k for k in shape.order if k in node] + [k for k in keys if k not in shape.order]
    if wanted != keys:
        for key in wanted:
            node.move_to_end(key)
        moved = True
    for key, child in shape.children.items():
        if key in node:
            moved = _reorder(node[key], child) or moved
    return moved


# --- comments travel with their keys --------------------------------------------------------

@dataclass
class _Slot:
    """One key or sequence item, in document order."""

    parent: Any
    key: Any
    value: Any

    @property
    def leaf(self) -> bool:
        v = self.value
        if isinstance(v, CommentedMap | CommentedSeq):
            return bool(v.fa.flow_style()) or len(v) == 0
        return True

    @property
    def ident(self) -> tuple[int, Any]:
        return (id(self.parent), self.key)

    def get_post(self) -> CommentToken | None:
        items = self.parent.ca.items.get(self.key)
        if isinstance(self.parent, CommentedSeq):
            return items[0] if items else None
        tok = items[2] if items and len(items) > 2 else None
        if tok is None and isinstance(self.value, CommentedMap | CommentedSeq):
            comment = self.value.ca.comment
            tok = comment[0] if comment else None
        return tok if isinstance(tok, CommentToken) else None

    def set_post(self, tok: CommentToken | None) -> None:
        if isinstance(self.value, CommentedMap | CommentedSeq) and self.value.ca.comment:
            self.value.ca.comment[0] = None
        items = self.parent.ca.items.setdefault(self.key, [None, None, None, None])
        items[0 if isinstance(self.parent, CommentedSeq) else 2] = tok


def _slots(node: Any) -> Iterator[_Slot]:
    """Keys and items in pre-order (document order); flow collections are not entered."""
    if isinstance(node, CommentedMap | CommentedSeq) and node.fa.flow_style():
        return
    if isinstance(node, CommentedMap):
        pairs: Iterator[tuple[Any, Any]] = iter(node.items())
    elif isinstance(node, CommentedSeq):
        pairs = iter(enumerate(node))
    else:
        return
    for key, value in pairs:
        slot = _Slot(node, key, value)
        yield slot
        yield from _slots(value)


def _split(text: str) -> tuple[str, str]:
    """A post-value comment -> (end-of-line part, following lines)."""
    if text.startswith("\n"):
        return "", text[1:]
    head, _, rest = text.partition("\n")
    return head, rest


def _move_comments(doc: CommentedMap, shape: Shape) -> None:
    """Reorder ``doc`` so that comment lines keep preceding the key they were written above."""
    before = list(_slots(doc))
    eol: dict[tuple[int, Any], tuple[str, CommentToken]] = {}
    leading: dict[tuple[int, Any], str] = {}
    trailing = ""
    for i, slot in enumerate(before):
        start = _pop_start_comment(slot)
        if start and i + 1 < len(before):
            leading[before[i + 1].ident] = start
        tok = slot.get_post() if slot.leaf else None
        if tok is None:
            continue
        head, rest = _split(tok.value)
        if head:
            eol[slot.ident] = (head, tok)
        if rest:
            if i + 1 < len(before):
                leading[before[i + 1].ident] = rest
            else:
                trailing = rest
        slot.set_post(None)
    _reorder(doc, shape)
    _reattach(doc, eol, leading, trailing)


def _reattach(doc: CommentedMap, eol: dict[tuple[int, Any], tuple[str, CommentToken]],
              leading: dict[tuple[int, Any], str], trailing: str) -> None:
    after = list(_slots(doc))
    posts: dict[int, list[str]] = {}  # index of a leaf slot -> [eol, following lines...]
    for i, slot in enumerate(after):
        if slot.leaf:
            posts.setdefault(i, [eol.get(slot.ident, ("", None))[0]])
        text = leading.get(slot.ident)
        if text is None:
            continue
        prev = i - 1
        if prev >= 0 and not after[prev].leaf and isinstance(after[prev].parent, CommentedMap):
            _add_start_comment(after[prev], text)
            continue
        while prev >= 0 and not after[prev].leaf:
            prev -= 1
        if prev < 0:
            _add_header(doc, text)
        else:
            posts.setdefault(prev, [eol.get(after[prev].ident, ("", None))[0]]).append(text)
    leaves = [i for i, s in enumerate(after) if s.leaf]
    if trailing and leaves:
        posts[leaves[-1]].append(trailing)
    for i, parts in posts.items():
        slot = after[i]
        kept = eol.get(slot.ident)
        if not parts[0] and len(parts) == 1:
            continue
        col = kept[1].column if kept is not None else 0
        slot.set_post(CommentToken(parts[0] + "\n" + "".join(parts[1:]), CommentMark(col)))


def _pop_start_comment(slot: _Slot) -> str:
    """Comment lines between ``key:`` and the first key of its block mapping (removed)."""
    if slot.leaf or not isinstance(slot.parent, CommentedMap):
        return ""
    items = slot.parent.ca.items.get(slot.key)
    tokens = items[3] if items and len(items) > 3 and items[3] else []
    if not tokens:
        return ""
    items[3] = None
    if isinstance(slot.value, CommentedMap) and slot.value.ca.comment:
        slot.value.ca.comment[1] = None
    return "".join(t.value for t in tokens if isinstance(t, CommentToken))


def _add_start_comment(slot: _Slot, text: str) -> None:
    """Comment lines between ``key:`` and the first entry of its block value."""
    items = slot.parent.ca.items.setdefault(slot.key, [None, None, None, None])
    existing = items[3] or []
    items[3] = [*existing, CommentToken(text, CommentMark(0))]


def _add_header(doc: CommentedMap, text: str) -> None:
    if doc.ca.comment is None:
        doc.ca.comment = [None, []]
    if doc.ca.comment[1] is None:
        doc.ca.comment[1] = []
    doc.ca.comment[1].append(CommentToken(text, CommentMark(0)))


# --- formatting a file ----------------------------------------------------------------------

class FormatError(Exception):
    """The text is not YAML that can be formatted; carries a 1-based position."""

    def __init__(self, code: str, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.code, self.message, self.line, self.col = code, message, line, col


def _load(text: str) -> list[Any]:
    try:
        return list(make_yaml().load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        code = "E003" if type(exc).__name__ == "DuplicateKeyError" else "E002"
        problem = exc.problem or "invalid YAML"
        raise FormatError(code, f"YAML syntax error: {problem}", line, col) from exc
    except YAMLError as exc:
        raise FormatError("E002", f"YAML error: {exc}") from exc


def format_text(text: str) -> str:
    """The canonical form of ``text``; raises ``FormatError`` when it does not parse.

    A text without any document (empty, only comments) is returned unchanged.
    """
    docs = [d for d in _load(text) if d is not None]
    if not docs:
        return text
    for doc in docs:
        if isinstance(doc, CommentedMap):
            shape = document_shape(doc)
            probe = _copy_keys(doc)
            if _reorder(probe, shape):
                _move_comments(doc, shape)
    out = _tidy(_dump(docs))
    if _same_data(text, out) is False:
        raise FormatError("E010", "formatting would change the file's data (a ruamel.yaml "
                          "emitter limitation); file left as is, please report it")
    return out


def _copy_keys(node: Any) -> Any:
    """A comment-free skeleton of ``node`` to test whether any key is out of order."""
    if isinstance(node, CommentedMap):
        return CommentedMap((k, _copy_keys(v)) for k, v in node.items())
    if isinstance(node, CommentedSeq):
        return CommentedSeq(_copy_keys(v) for v in node)
    return None


def _dump(docs: list[Any]) -> str:
    buf = io.StringIO()
    make_yaml().dump_all(docs, buf)
    return buf.getvalue()


_BLOCK_START = re.compile(r"^\s*(?:- )*[^#]*?(?:^|[:\s-])\s*[|>][-+0-9]*\s*(?:#.*)?$")


def _block_scalar_lines(lines: list[str]) -> set[int]:
    """Indexes of the content lines of block scalars (``key: |``): never touched."""
    inside: set[int] = set()
    start_indent: int | None = None
    for i, line in enumerate(lines):
        body = line.lstrip()
        if start_indent is not None:
            if not body or len(line) - len(body) > start_indent:
                inside.add(i)
                continue
            start_indent = None
        if _BLOCK_START.match(line):
            start_indent = len(line) - len(body)
    return inside


def _tidy(text: str) -> str:
    """Cosmetics that ruamel leaves alone: no trailing spaces, one final newline, each comment
    line indented like the line below it. Kept as is when this would change the data (a block
    scalar holding such lines)."""
    lines = text.splitlines()
    literal = _block_scalar_lines(lines)
    lines = [line if i in literal else line.rstrip() for i, line in enumerate(lines)]
    indent = 0
    for i in range(len(lines) - 1, -1, -1):
        body = lines[i].lstrip()
        if i in literal:
            continue
        if body.startswith("#"):
            lines[i] = " " * indent + body
        elif body and body != "---":
            indent = len(lines[i]) - len(body)
        elif body == "---":
            indent = 0
    tidied = "\n".join(lines).strip("\n") + "\n"
    if tidied == text:
        return text
    return tidied if _same_data(text, tidied) else text


_LOADER: Any = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


def _same_data(before: str, after: str) -> bool | None:
    """Whether both texts hold the same data, read as ``convctl validate`` reads them (PyYAML);
    ``None`` when ``before`` itself cannot be read that way."""
    try:
        old = [d for d in pyyaml.load_all(before, Loader=_LOADER) if d is not None]
    except pyyaml.YAMLError:
        return None
    try:
        return old == [d for d in pyyaml.load_all(after, Loader=_LOADER) if d is not None]
    except pyyaml.YAMLError:
        return False


# --- generated documents ----------------------------------------------------------------------

def to_commented(data: Any, depth: int = 0) -> Any:
    """Plain data -> ruamel nodes. Like hand-written manifests: a collection of scalars below
    ``metadata``/``spec`` goes flow style (``{...}``, ``[...]``) when it fits on a line."""
    if isinstance(data, dict):
        node: Any = CommentedMap((_scalar(k), to_commented(v, depth + 1))
                                 for k, v in data.items())
        values = list(data.values())
        size = sum(len(str(k)) + len(str(v)) + 4 for k, v in data.items())
    elif isinstance(data, list):
        node = CommentedSeq(to_commented(v, depth + 1) for v in data)
        values, size = data, sum(len(str(v)) + 2 for v in data)
    else:
        return _scalar(data)
    leaf = not any(isinstance(v, dict | list) for v in values)
    if depth >= 2 and leaf and size + 2 * depth <= FLOW_MAX:
        node.fa.set_flow_style()
    else:
        node.fa.set_block_style()
    return node


def _scalar(value: Any) -> Any:
    if isinstance(value, str) and _needs_quotes(value):
        from ruamel.yaml.scalarstring import DoubleQuotedScalarString

        return DoubleQuotedScalarString(value)
    return value


def _needs_quotes(value: str) -> bool:
    """Strings a YAML 1.1 reader (PyYAML: yes, on, 1e3, 2024-01-01) would not read back as the
    same string, as a value or a key, in block or flow context (``?0``, ``a, b``)."""
    if value != value.strip() or not value:
        return True
    try:
        probe = pyyaml.load(f"{{{value}: [{value}]}}", Loader=_LOADER)
        return bool(probe != {value: [value]} or pyyaml.load(value, Loader=_LOADER) != value)
    except pyyaml.YAMLError:
        return True


def dump_documents(docs: list[dict[str, Any]], header: str = "") -> str:
    """Generated documents as canonical YAML, ``header`` (comment lines) on top of each."""
    nodes = []
    for doc in docs:
        node = to_commented(doc)
        _reorder(node, document_shape(node))
        if header:
            node.yaml_set_start_comment(header)
        nodes.append(node)
    return _tidy(_dump(nodes))


def check_files(paths: list[str], diags: Diagnostics) -> list[tuple[str, str, str]]:
    """(path, current text, formatted text) of every readable manifest under ``paths``;
    files that cannot be read or parsed get a diagnostic instead."""
    from reconciler.adapters.manifests import discover, read_text

    results = []
    for path in discover(paths, diags):
        text = read_text(path, diags)
        if text is None:
            continue
        try:
            formatted = format_text(text)
        except FormatError as exc:
            diags.error(exc.code, exc.message, SourceLocation(str(path), exc.line, exc.col))
            continue
        results.append((str(path), text, formatted))
    return results


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``;
    the permission bits of an existing file are kept."""
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=".convctl-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if os.path.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
