"""The node-tree loader that ``reconciler.adapters.yamlparse`` replaced, kept only as the
reference ``tests/test_loader_equivalence.py`` holds the event-stream loader to: PyYAML's C
composer builds the node tree, and this converts it to data + positions (as of fd70e01).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from reconciler.core.credentials import shown
from reconciler.core.source import Path, Position, RawDocument, SourceMap
from reconciler.diagnostics import Diagnostics, SourceLocation

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader with cheaper per-node hooks (the C composer calls them for every node).

    Safe loaders register no path resolvers, so descending and ascending track nothing and a
    plain scalar's tag depends on its text alone: it is resolved once per distinct text, in a
    bounded cache shared by every file of a run.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not _ScalarNode or not implicit[0]:
            return super().resolve(kind, value, implicit)
        tag = _PLAIN_TAGS.get(value)
        if tag is None:
            if len(_PLAIN_TAGS) >= _PLAIN_TAGS_MAX:
                _PLAIN_TAGS.clear()
            tag = _PLAIN_TAGS[value] = super().resolve(kind, value, implicit)
        return tag


_PLAIN_TAGS: dict[str, str] = {}  # plain scalar text -> resolved tag
_PLAIN_TAGS_MAX = 100_000

MAX_NODES = 200_000  # per document, counting every alias expansion
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
# YAML 1.1 types of the plain scalars `=` and `<<`; as values (and `=` as a key) they are text.
_VALUE = "tag:yaml.org,2002:value"
_MERGE = "tag:yaml.org,2002:merge"
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_constructor = yaml.constructor.SafeConstructor()
_ScalarNode = yaml.ScalarNode


class _Refused(Exception):
    def __init__(self, code: str, message: str, mark: Any) -> None:  # a yaml Mark or Position
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark


def _pos(mark: Any) -> Position:
    if isinstance(mark, tuple):
        return mark
    return (mark.line + 1, mark.column + 1)


class _Converter:
    """Node tree -> plain data + positions, with node-count and depth budgets.

    This is the hot path of ``validate`` (about 30 nodes per document, tens of thousands of
    documents): plain string scalars, most nodes, are handled inline without a call, positions
    are assigned directly (every path of a document is unique), and keys, paths and short
    values are shared across the documents of a file (a third less memory).
    """

    def __init__(self, source: SourceMap, shared: dict[Any, Any] | None = None) -> None:
        # One copy of each key, path and short text: share(x, x) returns the first equal x.
        self.share: Callable[[Any, Any], Any] = ({} if shared is None else shared).setdefault
        self.source = source
        self.values = source.values
        self.keys = source.keys
        self.budget = MAX_NODES

    def convert(self, node: Any, path: Path, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Refused("E005", f"document expands to more than {MAX_NODES} nodes "
                           "(alias bomb?)", self._enclosing_key(path) or node.start_mark)
        if depth > MAX_DEPTH:
            raise _Refused("E005", f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        mark = node.start_mark
        self.values[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, _ScalarNode):
            return node.value if node.tag == _STR else self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ)
            return self._sequence(node, path, depth)
        self._check_tag(node, _MAP)
        return self._mapping(node, path, depth)

    def _sequence(self, node: Any, path: Path, depth: int) -> list[Any]:
        out: list[Any] = []
        values, share, child = self.values, self.share, depth + 1
        for i, item in enumerate(node.value):
            item_path = (*path, i)
            item_path = share(item_path, item_path)
            if (item.tag == _STR and self.budget > 0 and child <= MAX_DEPTH
                    and isinstance(item, _ScalarNode)):  # inline convert() of a plain string
                self.budget -= 1
                mark = item.start_mark
                values[item_path] = (mark.line + 1, mark.column + 1)
                text = item.value
                out.append(share(text, text) if len(text) < 32 else text)
            else:
                out.append(self.convert(item, item_path, child))
        return out

    def _enclosing_key(self, path: Path) -> Position | None:
        for end in range(len(path), 0, -1):
            if path[:end] in self.source.keys:
                return self.source.keys[path[:end]]
        return None

    def _mapping(self, node: Any, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys, values, share, child = self.keys, self.values, self.share, depth + 1
        for key_node, value_node in node.value:
            if key_node.tag == _STR and isinstance(key_node, _ScalarNode):
                key = key_node.value
            else:
                key = self._key(key_node)
            if key in out:
                first = keys.get((*path, key), (0, 0))[0]
                raise _Refused("E003", f"duplicate key {shown(key)} (first defined on line "
                               f"{first})",
                               key_node.start_mark)
            key = share(key, key)
            key_path = (*path, key)
            key_path = share(key_path, key_path)
            mark = key_node.start_mark
            keys[key_path] = (mark.line + 1, mark.column + 1)
            if (value_node.tag == _STR and self.budget > 0 and child <= MAX_DEPTH
                    and isinstance(value_node, _ScalarNode)):  # inline convert() of a string
                self.budget -= 1
                mark = value_node.start_mark
                values[key_path] = (mark.line + 1, mark.column + 1)
                text = value_node.value
                out[key] = share(text, text) if len(text) < 32 else text
            else:
                out[key] = self.convert(value_node, key_path, child)
        return out

    def _key(self, key_node: Any) -> str:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Refused("E004", "merge keys (<<) are not supported in manifests",
                           key_node.start_mark)
        if not isinstance(key_node, _ScalarNode):
            raise _Refused("E103", "mapping keys must be plain strings", key_node.start_mark)
        if key_node.tag not in _SCALAR_TAGS and key_node.tag != _VALUE:
            raise _Refused("E004", f"tag '{_short_tag(key_node.tag)}' is not allowed in "
                           "manifests", key_node.start_mark)
        return str(key_node.value)  # the text as written: `no:` is "no", `01:` is "01"

    def _scalar(self, node: Any) -> Any:
        if node.tag in (_VALUE, _MERGE):
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise _Refused("E004", f"tag '{_short_tag(node.tag)}' is not allowed in manifests",
                           node.start_mark)
        if node.tag == _STR:
            return node.value
        try:
            value = _constructor.yaml_constructors[node.tag](_constructor, node)
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise _Refused("E002", f"invalid {_short_tag(node.tag)} value",
                           node.start_mark) from exc
        if node.tag in (_INT, _FLOAT):
            _check_decimal(node, value)
        return value

    @staticmethod
    def _check_tag(node: Any, expected: str) -> None:
        if node.tag != expected:
            raise _Refused("E004", f"tag '{_short_tag(node.tag)}' is not allowed in manifests",
                           node.start_mark)


def _check_decimal(node: Any, value: float) -> None:
    """Refuse a number not written in plain decimal (YAML 1.1 and 1.2 may disagree on it)."""
    text = node.value.strip()
    if node.tag == _INT and _DECIMAL_INT.fullmatch(text):
        return
    if node.tag == _FLOAT and ":" not in text and "_" not in text:
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
    raise _Refused("E011", f"'{written}' is {why}; write numbers in plain decimal, or quote the "
                   "value if it is text", node.start_mark)


def _is_empty(node: Any) -> bool:
    """A document with nothing in it: a ``---`` followed by comments or blank lines only."""
    return (isinstance(node, _ScalarNode) and node.tag == _NULL and node.value == ""
            and not node.style)


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def parse_documents(text: str, file: str, diags: Diagnostics) -> list[RawDocument]:
    """Parse every document of ``text``; problems are added to ``diags`` with positions.

    Documents before a syntax error are kept; a refused document is dropped whole.
    """
    docs: list[RawDocument] = []
    shared: dict[Any, Any] = {}  # keys, paths and short values repeat across documents
    try:
        loader = _Loader(text)
    except UnicodeEncodeError as exc:  # lone surrogates: not text a file can hold
        diags.error("E001", "text is not valid Unicode (lone surrogate)",
                    _offset_location(file, text, exc.start))
        return docs
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty(node):
                continue
            source = SourceMap(file)
            try:
                data = _Converter(source, shared).convert(node, (), 0)
            except _Refused as exc:
                line, col = _pos(exc.mark)
                diags.error(exc.code, exc.message, SourceLocation(file, line, col))
                docs.append(RawDocument(_identity(node), SourceMap(file), refused=True))
                continue
            docs.append(RawDocument(data, source))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (0, 0)
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own limit (1000)
            diags.error("E005", f"nesting deeper than {MAX_DEPTH} levels",
                        SourceLocation(file, line, col))
        else:
            diags.error("E002", f"YAML syntax error: {_describe(exc, text, line, col)}",
                        SourceLocation(file, line, col))
    except yaml.reader.ReaderError as exc:  # control characters; position is a UTF-8 offset
        offset = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
        diags.error("E002", f"character U+{exc.character:04X} is not allowed in YAML "
                    f"({exc.reason})", _offset_location(file, text, offset))
    except yaml.YAMLError as exc:
        diags.error("E002", f"YAML error: {exc}", SourceLocation(file))
    finally:
        loader.dispose()
    return docs


def _identity(node: Any) -> dict[str, Any]:
    """``kind`` and ``metadata.name`` of a refused document, when they are plain scalars."""
    def scalars(mapping: Any) -> dict[str, Any]:
        if not isinstance(mapping, yaml.MappingNode):
            return {}
        return {k.value: v for k, v in mapping.value if isinstance(k, yaml.ScalarNode)}

    top = scalars(node)
    out: dict[str, Any] = {}
    if isinstance(top.get("kind"), yaml.ScalarNode):
        out["kind"] = top["kind"].value
    name = scalars(top.get("metadata")).get("name")
    if isinstance(name, yaml.ScalarNode):
        out["metadata"] = {"name": name.value}
    return out


def _offset_location(file: str, text: str, offset: int) -> SourceLocation:
    line = text.count("\n", 0, offset) + 1
    return SourceLocation(file, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _describe(exc: yaml.MarkedYAMLError, text: str, line: int, col: int) -> str:
    problem = exc.problem or "invalid YAML"
    lines = text.splitlines()
    if 0 < line <= len(lines) and lines[line - 1][col - 1 : col] == "\t":
        return "tab character; YAML indentation must use spaces"
    if exc.context:
        return f"{problem} ({exc.context})"
    return problem
