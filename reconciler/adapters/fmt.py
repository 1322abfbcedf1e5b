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

``dump_documents`` is the same emitter for generated documents (``convctl import``). The key
order is ``fmt_order``'s, the comment moving ``fmt_comments``'.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from reconciler.adapters.fmt_comments import move_comments
from reconciler.adapters.fmt_order import document_shape, reorder
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
            if reorder(probe, shape):
                move_comments(doc, shape)
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
        reorder(node, document_shape(node))
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
