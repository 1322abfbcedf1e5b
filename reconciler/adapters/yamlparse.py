"""Safe, positioned YAML parsing for manifests.

We compose the node tree with libyaml's C parser (PyYAML ``CSafeLoader``; measured about 10x the
ruamel.yaml round-trip loader, see README "Performance") and convert nodes to plain data ourselves,
which lets us record the 1-based position of every key and value and refuse what a manifest must
never contain: duplicate keys, unknown or Python tags, merge keys, alias bombs, deep nesting.
Every problem becomes a diagnostic; nothing here raises on bad input.
"""

from __future__ import annotations

from typing import Any

import yaml

from reconciler.core.source import Path, Position, RawDocument, SourceMap
from reconciler.diagnostics import Diagnostics, SourceLocation

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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
_constructor = yaml.constructor.SafeConstructor()


class _Refused(Exception):
    def __init__(self, code: str, message: str, mark: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark


def _pos(mark: Any) -> Position:
    return (mark.line + 1, mark.column + 1)


class _Converter:
    """Node tree -> plain data + positions, with node-count and depth budgets."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.budget = MAX_NODES

    def convert(self, node: Any, path: Path, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Refused("E005", f"document expands to more than {MAX_NODES} nodes "
                           "(alias bomb?)", node.start_mark)
        if depth > MAX_DEPTH:
            raise _Refused("E005", f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        self.source.values.setdefault(path, _pos(node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ)
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        self._check_tag(node, _MAP)
        return self._mapping(node, path, depth)

    def _mapping(self, node: Any, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused("E004", "merge keys (<<) are not supported in manifests",
                               key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("E103", "mapping keys must be plain strings", key_node.start_mark)
            key = self._scalar(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                first = self.source.keys.get((*path, key), (0, 0))[0]
                raise _Refused("E003", f"duplicate key '{key}' (first defined on line {first})",
                               key_node.start_mark)
            self.source.keys[(*path, key)] = _pos(key_node.start_mark)
            out[key] = self.convert(value_node, (*path, key), depth + 1)
        return out

    def _scalar(self, node: Any) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise _Refused("E004", f"tag '{_short_tag(node.tag)}' is not allowed in manifests",
                           node.start_mark)
        if node.tag == _STR:
            return node.value
        try:
            return _constructor.yaml_constructors[node.tag](_constructor, node)
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise _Refused("E002", f"invalid {_short_tag(node.tag)} value", node.start_mark) from exc

    @staticmethod
    def _check_tag(node: Any, expected: str) -> None:
        if node.tag != expected:
            raise _Refused("E004", f"tag '{_short_tag(node.tag)}' is not allowed in manifests",
                           node.start_mark)


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def parse_documents(text: str, file: str, diags: Diagnostics) -> list[RawDocument]:
    """Parse every document of ``text``; problems are added to ``diags`` with positions.

    Documents before a syntax error are kept; a refused document is dropped whole.
    """
    docs: list[RawDocument] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            source = SourceMap(file)
            try:
                data = _Converter(source).convert(node, (), 0)
            except _Refused as exc:
                line, col = _pos(exc.mark)
                diags.error(exc.code, exc.message, SourceLocation(file, line, col))
                continue
            docs.append(RawDocument(data, source))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (0, 0)
        diags.error("E002", f"YAML syntax error: {_describe(exc, text, line, col)}",
                    SourceLocation(file, line, col))
    except yaml.YAMLError as exc:
        diags.error("E002", f"YAML error: {exc}", SourceLocation(file))
    finally:
        loader.dispose()
    return docs


def _describe(exc: yaml.MarkedYAMLError, text: str, line: int, col: int) -> str:
    problem = exc.problem or "invalid YAML"
    lines = text.splitlines()
    if 0 < line <= len(lines) and lines[line - 1][col - 1 : col] == "\t":
        return "tab character; YAML indentation must use spaces"
    if exc.context:
        return f"{problem} ({exc.context})"
    return problem
