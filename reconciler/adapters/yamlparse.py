"""Safe, positioned YAML parsing for manifests.

We read libyaml's event stream (PyYAML's C parser) and build plain data straight from it, with
the 1-based position of every key and value: no node tree is composed, mapping keys are never
tag-resolved (a key is the text as written), and a value is typed by ``yamlevents`` (plain
decimal numbers only, E011). On the way we refuse what a manifest must never contain: duplicate
keys, unknown or Python tags, merge keys, alias bombs, deep nesting. Every problem becomes a
diagnostic; nothing here raises on bad input. A plain file is first read without positions
(``yamllean``; a large one by rapidyaml, ``yamlfast``, when its data is provably the same); this
builder then runs only when a position is first asked for, or when the file is not plain.

Anchors and aliases behave as PyYAML's composer made them: an alias is the anchored node again
(its events are recorded once and replayed, every replayed node counting towards the budget), an
undefined alias or a duplicate anchor is a YAML error for the rest of the file, and an alias
inside its own anchor nests until the depth limit.

Mapping keys are always the text as written (``no:`` is the key ``no``, not ``False``). Empty
documents (a ``---`` with nothing after it, common in generated YAML) are skipped, as kubectl does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from reconciler.adapters.yamlevents import (
    MAP,
    MAX_DEPTH,
    MAX_NODES,
    MAYBE_TYPED,
    MERGE,
    SCALAR_TAGS,
    SEQ,
    VALUE,
    Alias,
    DocEnd,
    MapEnd,
    Parser,
    Refused,
    Scalar,
    SeqEnd,
    SeqStart,
    is_empty,
    scalar,
    scalar_tag,
    short_tag,
)
from reconciler.adapters.yamlidentity import identity
from reconciler.core.credentials import shown
from reconciler.core.source import Path, Position, RawDocument, SourceMap
from reconciler.diagnostics import Diagnostics, SourceLocation

Events = Callable[[], Any]  # the next event: the parser's, or a replay of an anchor's events


def _pos(mark: Any) -> Position:
    if isinstance(mark, tuple):
        return mark
    return (mark.line + 1, mark.column + 1)


class _Builder:
    """One document's events -> plain data + positions, with node-count and depth budgets.

    This is the hot path of ``validate`` (about 40 events per document, tens of thousands of
    documents): plain text keys and values, most events, are handled inline in the loops,
    a child's path is looked up, not built, once a file has seen it, positions are assigned
    directly (every path of a document is unique, so the number of
    positions is the number of nodes built), and keys, paths and short values are shared across
    the documents of a file (a third less memory). ``recording`` holds the event lists of the
    anchors still open; it is ``()`` while an alias is replayed.
    """

    def __init__(self, source: SourceMap, shared: dict[Any, Any],
                 children: dict[int, dict[Any, Path]]) -> None:
        self.share: Callable[[Any, Any], Any] = shared.setdefault
        self.children = children  # id(shared path) -> key or index -> the shared child path
        self.keys = source.keys
        self.values = source.values
        self.anchors: dict[str, list[Any]] = {}  # anchor -> its events (growing while open)
        self.recording: list[list[Any]] = []

    def node(self, event: Any, get: Events, rec: Any, path: Path, depth: int) -> Any:
        kind = type(event)
        if kind is Alias:
            return self._alias(event, path, depth)
        opened = event.anchor is not None and rec is self.recording
        if opened:
            self._anchor(event)
        if len(self.values) >= MAX_NODES:
            raise Refused("E005", f"document expands to more than {MAX_NODES} nodes "
                           "(alias bomb?)", self._enclosing_key(path) or event.start_mark)
        if depth > MAX_DEPTH:
            raise Refused("E005", f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        mark = event.start_mark
        self.values[path] = (mark.line + 1, mark.column + 1)
        if kind is Scalar:
            return scalar(event)
        expected = SEQ if kind is SeqStart else MAP
        if event.tag is not None and event.tag not in ("!", expected):
            raise Refused("E004", f"tag '{short_tag(event.tag)}' is not allowed in manifests",
                           mark)
        if opened:  # record this collection's events for its aliases
            rec.append(self.anchors[event.anchor])
            try:
                return self._collection(kind, get, rec, path, depth + 1)
            finally:
                rec.pop()
        return self._collection(kind, get, rec, path, depth + 1)

    def _collection(self, kind: Any, get: Events, rec: Any, path: Path, child: int) -> Any:
        if kind is SeqStart:
            return self._sequence(get, rec, path, child)
        return self._mapping(get, rec, path, child)

    def _sequence(self, get: Events, rec: Any, path: Path, child: int) -> list[Any]:
        out: list[Any] = []
        values, share = self.values, self.share
        kids = self._kids(path)
        mark: Any
        index = 0
        while True:
            event = get()
            if rec:
                for events in rec:
                    events.append(event)
            kind = type(event)
            if kind is SeqEnd:
                return out
            item_path = kids.get(index)
            if item_path is None:
                item_path = kids[index] = share((*path, index), (*path, index))
            index += 1
            if (kind is Scalar and event.tag is None and event.anchor is None
                    and (not event.implicit[0] or event.value[:1] not in MAYBE_TYPED)
                    and len(values) < MAX_NODES and child <= MAX_DEPTH):  # plain text, inline
                mark = event.start_mark
                values[item_path] = (mark.line + 1, mark.column + 1)
                text = event.value
                out.append(share(text, text) if len(text) < 32 else text)
            else:
                out.append(self.node(event, get, rec, item_path, child))

    def _mapping(self, get: Events, rec: Any, path: Path, child: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys, values, share = self.keys, self.values, self.share
        kids = self._kids(path)
        mark: Any
        while True:
            event = get()
            if rec:
                for events in rec:
                    events.append(event)
            kind = type(event)
            if kind is Scalar and event.tag is None and event.anchor is None:
                key, mark = event.value, event.start_mark
                if key == "<<" and event.implicit[0]:
                    raise Refused("E004", "merge keys (<<) are not supported in manifests", mark)
            elif kind is MapEnd:
                return out
            else:
                key, mark = self._key(event, rec)
            if key in out:
                first = keys.get((*path, key), (0, 0))[0]
                raise Refused("E003", f"duplicate key {shown(key)} (first defined on line "
                               f"{first})", mark)
            key_path = kids.get(key)
            if key_path is None:
                key = share(key, key)
                key_path = kids[key] = share((*path, key), (*path, key))
            else:
                key = key_path[-1]
            keys[key_path] = (mark.line + 1, mark.column + 1)
            event = get()
            if rec:
                for events in rec:
                    events.append(event)
            if (type(event) is Scalar and event.tag is None and event.anchor is None
                    and (not event.implicit[0] or event.value[:1] not in MAYBE_TYPED)
                    and len(values) < MAX_NODES and child <= MAX_DEPTH):  # plain text, inline
                mark = event.start_mark
                values[key_path] = (mark.line + 1, mark.column + 1)
                text = event.value
                out[key] = share(text, text) if len(text) < 32 else text
            else:
                out[key] = self.node(event, get, rec, key_path, child)

    def _kids(self, path: Path) -> dict[Any, Path]:
        kids = self.children.get(id(path))
        if kids is None:
            kids = self.children[id(path)] = {}
        return kids

    def _key(self, event: Any, rec: Any) -> tuple[str, Any]:
        """A key that is not plain untagged text: an alias, anchored, tagged, or not a scalar."""
        if type(event) is Alias:
            event = self._anchored(event)[0]  # the anchored node is the key
        elif event.anchor is not None and rec is self.recording:
            self._anchor(event)
        mark = event.start_mark
        if type(event) is not Scalar:
            raise Refused("E103", "mapping keys must be plain strings", mark)
        tag = scalar_tag(event)
        if tag == MERGE:
            raise Refused("E004", "merge keys (<<) are not supported in manifests", mark)
        if tag not in SCALAR_TAGS and tag != VALUE:
            raise Refused("E004", f"tag '{short_tag(tag)}' is not allowed in manifests", mark)
        return event.value, mark  # the text as written: `no:` is "no", `01:` is "01"

    def _anchor(self, event: Any) -> None:
        first = self.anchors.get(event.anchor)
        if first is not None:
            raise yaml.composer.ComposerError("found duplicate anchor; first occurrence",
                                              first[0].start_mark, "second occurrence",
                                              event.start_mark)
        self.anchors[event.anchor] = [event]

    def _anchored(self, alias: Any) -> list[Any]:
        events = self.anchors.get(alias.anchor)
        if events is None:
            raise yaml.composer.ComposerError(None, None, "found undefined alias",
                                              alias.start_mark)
        return events

    def _alias(self, alias: Any, path: Path, depth: int) -> Any:
        """Replay the anchored node's events here (an open anchor: up to the alias itself)."""
        replay = iter(self._anchored(alias)).__next__
        return self.node(replay(), replay, (), path, depth)

    def _enclosing_key(self, path: Path) -> Position | None:
        for end in range(len(path), 0, -1):
            if path[:end] in self.keys:
                return self.keys[path[:end]]
        return None

    def skip_document(self, get: Events) -> Any:
        """The rest of a refused document, checked as the composer would; its end event."""
        while True:
            event = get()
            kind = type(event)
            if kind is DocEnd:
                return event
            if kind is Alias:
                self._anchored(event)
            elif getattr(event, "anchor", None) is not None:
                self._anchor(event)


def parse_documents(text: str, file: str, diags: Diagnostics) -> list[RawDocument]:
    """Parse every document of ``text``; problems are added to ``diags`` with positions.

    Documents before a syntax error are kept; a refused document is dropped whole. A plain file
    is read by rapidyaml (``yamlfast``, large files) or the lean builder (``yamllean``), its
    positions parsed when first asked for.
    """
    from reconciler.adapters.yamlfast import fast_data
    from reconciler.adapters.yamllean import lazy_documents, lean_documents

    datas = fast_data(text)
    if datas is not None:
        return lazy_documents(datas, text, file, positioned_documents)
    lean = lean_documents(text, file, positioned_documents)
    return lean if lean is not None else positioned_documents(text, file, diags)


def positioned_documents(text: str, file: str, diags: Diagnostics) -> list[RawDocument]:
    """``parse_documents`` with every position built on the way (the lean pass's fallback)."""
    docs: list[RawDocument] = []
    try:
        parser = Parser(text)
    except UnicodeEncodeError as exc:  # lone surrogates: not text a file can hold
        diags.error("E001", "text is not valid Unicode (lone surrogate)",
                    _offset_location(file, text, exc.start))
        return docs
    try:
        _read_documents(parser, text, file, diags, docs)
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
        parser.dispose()
    return docs


def _read_documents(parser: Any, text: str, file: str, diags: Diagnostics,
                    docs: list[RawDocument]) -> None:
    get, check = parser.get_event, parser.check_event
    shared: dict[Any, Any] = {(): ()}  # keys, paths and short values repeat across documents
    children: dict[int, dict[Any, Path]] = {}
    get()  # the stream start
    while not check(yaml.StreamEndEvent):
        start, root = get(), get()
        if is_empty(root):
            get()
            continue
        source = SourceMap(file)
        builder = _Builder(source, shared, children)
        try:
            data = builder.node(root, get, builder.recording, shared[()], 0)
        except Refused as exc:
            end = builder.skip_document(get)  # a YAML error further on wins, as it did
            line, col = _pos(exc.mark)
            diags.error(exc.code, exc.message, SourceLocation(file, line, col))
            written = text[start.start_mark.index : end.end_mark.index]
            docs.append(RawDocument(identity(written), SourceMap(file), refused=True))
            continue
        get()  # the document end
        docs.append(RawDocument(data, source))


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
