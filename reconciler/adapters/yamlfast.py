"""The loader's first tier: rapidyaml's JSON of a large plain file, when it is the lean pass's data.

rapidyaml (``ryml``, C++) parses a 10,000-event file and emits it as JSON in about a quarter of
the time libyaml takes to produce its events alone; ``orjson`` reads that JSON back. But ryml is
a different parser (YAML 1.2, more lenient in places) and its JSON loses each scalar's style, so
its data is used only when it provably equals what ``yamllean`` would build; any doubt gives
``None`` and the lean pass (then the positioned one) runs as before, so every diagnostic,
refusal and position stays theirs. False alarms cost speed only. Refused here:

* text that could hold what libyaml reads differently or refuses: a tag, anchor, alias, merge
  key, directive, block scalar, tab, carriage return, backslash, control or non-printable
  character, a YAML 1.1 line break (U+0085, U+2028, U+2029), a byte-order mark, a ``...``
  document end, a flow collection spanning lines, a ``#`` or a ``:`` not followed by a space on
  a line holding a flow collection, more on a line after a closing quote or bracket, a
  document larger than the lean pass's node budget could hold, or ryml's own parse error;
* JSON that is not exactly plain data: an escape (``\\``), an empty key, ``.inf`` or ``.nan``
  (what ryml writes for a plain ``inf``, ``infinity``, ``nan``...), a null document when
  the text holds a ``null`` (else it was empty: skipped, as the lean pass does), a float
  (``1e3`` is text in YAML 1.1; JSON numbers lose how they were written; orjson reads integers
  beyond 64 bits as floats), a duplicate key (more keys in ryml's JSON than in the data read
  back), nesting deeper than the lean pass allows;
* a string that, written plain, YAML 1.1 would type (``yes``, ``~``, ``0x1F``, ``2024-01-01``)
  or libyaml would refuse (``]x``, ``@x``), unless the text shows it cannot have been written
  plain: ryml would have emitted a plain one as a JSON number, bool or null (so ``"1"`` was
  quoted), or no occurrence of it in the text stands where a plain scalar could.

The less obvious ones (flow collections, text after a closing quote) were found by fuzzing ryml
against the lean pass, as ``tests/test_yaml_fast.py`` still does.

Small files skip this tier (the lean pass is as fast there), and so does a process running
other threads: ryml prints its parse errors on the process's stderr, which is silenced for the
call, and another thread's output must not be lost in that moment. Without ``ryml`` installed
(no wheel for the platform) this tier is skipped silently.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any

import orjson

from reconciler.adapters import yamlevents as ev

MIN_SIZE = 16_384  # characters; below this the lean pass costs about what ryml's set-up does
_DEPTH_ROUNDS = (ev.MAX_DEPTH // 2) // 2 - 1  # each round strips up to two levels
_DOC_CHARS = ev.MAX_NODES // 2 - 1  # a document's nodes never outnumber its characters

# Bytes that leave a text plain: printable ASCII but ``! & * % \\ ` < | >`` (tags, anchors,
# aliases, directives, escapes, merge keys, block scalars), newline, all non-ASCII (checked
# apart). Anything ``translate`` keeps is looked at.
_PLAIN_BYTES = bytes(sorted({10, *range(32, 127), *range(128, 256)} - set(b"!&*%\\`<|>")))
_NOT_PRINTABLE = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                            "\U00010000-\U0010ffff]")
_NOT_FLOW = bytes(sorted(set(range(256)) - set(b"[]{}\n")))
_BRACKETS = bytes(sorted(set(range(256)) - set(b'"[]{}')))
# An escape, an empty key, or what ryml writes for `inf`, `-inf`, `.Inf`, `infinity`, `nan`
# (keys too): ".inf", "-.inf", ".nan", the text as written lost.
_NOT_AS_WRITTEN = (b"\\", b'"":', b'.inf"', b'.nan"')
_FLOATS = [re.compile(re.escape(lead) + rb"-?[0-9]+[.eE]") for lead in (b'":', b",", b"[")]
# A JSON string (no escapes: checked first) that is a value and could be typed written plain.
# Starting with a letter, only a few words are typed (bools and nulls: at most 5 letters).
_TYPED_FIRST = "".join(sorted(c for c in ev.MAYBE_TYPED if c and not c.isalpha()))
_TYPED_WORD = "".join(sorted(c for c in ev.MAYBE_TYPED if c.isalpha()))
_TYPED = re.compile(b'"([' + re.escape(_TYPED_FIRST).encode() + b'][^"]*|['
                    + _TYPED_WORD.encode() + b'][a-zA-Z]{1,4})"(?!:)')
# A string (key or value) starting with a character no plain scalar may start with, or one
# (`:`, `?`) that libyaml and ryml read differently in flow collections: after mapping these
# and JSON's own `[ { , :` to \x01, an opening quote is `\x01"` or ` "`.
_INDICATORS = bytes.maketrans(b"]}@`,[{#|>'?:%!&*", b"\x01" * 17)
_INDICATED = (b' "\x01', b'\x01"\x01')
# In a flow collection, a `#` (a comment to the line's end) or a `:` not followed by a space
# (`[a:]`, `[a:?b]`, `{a:1}`): where ryml and libyaml read otherwise, or only one refuses.
_FLOW_ODDITIES = (re.compile("#"), re.compile(":[^ \n]"))
# More on a line after a quoted scalar or a flow collection (`'a'   --- `, `[a]  - b`):
# ryml reads on where libyaml refuses. (A quote inside plain text, as in `it's`, looks alike.)
_AFTER_CLOSING = [re.compile(re.escape(closer) + rb" +[^ ,\]}:#\n]")
                  for closer in (b'"', b"'", b"]", b"}")]


def fast_data(text: str) -> list[Any] | None:
    """Every non-empty document's data, exactly as the lean pass builds it; or None.

    Only for a large file in a process running no other thread (see the module's docstring)."""
    if len(text) < MIN_SIZE or threading.active_count() != 1:
        return None
    return convert(text)


def convert(text: str) -> list[Any] | None:
    """``fast_data`` whatever the file's size (tests call this with other threads running)."""
    ryml = _ryml()
    raw = _plain_text(text)
    if ryml is None or raw is None or not _small_documents(text):
        return None
    emitted = _json(ryml, raw)
    if emitted is None or any(sign in emitted[1] for sign in _NOT_AS_WRITTEN):
        return None
    stream, json = emitted
    try:
        loaded = orjson.loads(json)
    except orjson.JSONDecodeError:
        return None
    docs: list[Any] = loaded if stream else [loaded]
    if None in docs:  # empty documents (skipped, as the lean pass does) or `null` ones?
        if "null" in text:
            return None
        docs = [doc for doc in docs if doc is not None]
    compact = orjson.dumps(docs)  # what was read back: floats show as such, one key each
    if json.count(b'":') != compact.count(b'":') or _has_float(compact):
        return None
    if not _shallow(json, stream) or not _strings_as_written(json, text):
        return None
    return docs


def _plain_text(text: str) -> bytes | None:
    """The UTF-8 of ``text`` if nothing in it needs a closer look than ryml's JSON gives."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return None
    rest = raw.translate(None, _PLAIN_BYTES)
    if rest and (rest.strip(b"<") or "<<" in text):
        return None
    if raw.startswith(b"...") or b"\n..." in raw:
        return None  # a document end marker: libyaml refuses it in places ryml does not
    if not _flows_on_one_line(raw) or any(_on_a_flow_line(p, text) for p in _FLOW_ODDITIES):
        return None
    if any(pattern.search(raw) for pattern in _AFTER_CLOSING):
        return None
    return raw if text.isascii() or _NOT_PRINTABLE.search(text) is None else None


def _on_a_flow_line(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` occurs on a line holding a flow collection's bracket."""
    find, at = text.find, 0
    while match := pattern.search(text, at):
        end = find("\n", match.start())
        end = len(text) if end < 0 else end
        line = text[text.rfind("\n", 0, match.start()) + 1 : end]
        if "[" in line or "]" in line or "{" in line or "}" in line:
            return True
        at = end
    return False


def _flows_on_one_line(raw: bytes) -> bool:
    """Every flow collection opens and closes on one line (ryml is laxer across lines)."""
    brackets = raw.translate(None, _NOT_FLOW)
    for _ in range(ev.MAX_DEPTH):
        if not brackets.strip(b"\n"):
            return True
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            return False
        brackets = shorter.replace(b"\n\n", b"\n")
    return False


def _small_documents(text: str) -> bool:
    """Every document well inside the lean pass's node budget (a node takes a character)."""
    if len(text) <= _DOC_CHARS:
        return True
    start, at, find = 0, 0, text.find
    while True:
        marker = find("\n---", at)
        if marker >= 0 and text[marker + 4 : marker + 5] not in ("", " ", "\n"):
            at = marker + 1  # "----" or "---x": text, not a document's start
            continue
        end = len(text) if marker < 0 else marker
        if end - start > _DOC_CHARS:
            return False
        if marker < 0:
            return True
        start = at = marker + 1


def _has_float(compact: bytes) -> bool:
    """A float in orjson's JSON of a list (always with ``.`` or ``e``), or a string like one."""
    return any(pattern.search(compact) for pattern in _FLOATS)


def _shallow(json: bytearray, stream: bool) -> bool:
    """No document nests deeper than the lean pass allows (strings holding brackets: unsure)."""
    nesting = json.translate(None, _BRACKETS).replace(b'""', b"")
    if b'"' in nesting:
        return False
    for _ in range(_DEPTH_ROUNDS + stream):
        if not nesting:
            return True
        nesting = nesting.replace(b"{}", b"").replace(b"[]", b"")
    return not nesting


def _strings_as_written(json: bytearray, text: str) -> bool:
    """No string in the JSON that libyaml would have read (or refused) otherwise."""
    marked = json.translate(_INDICATORS)
    if marked[:2] == b'"\x01' or any(pattern in marked for pattern in _INDICATED):
        return False
    typed = {raw.decode() for raw in set(_TYPED.findall(json))}
    typed = {value for value in typed if ev.plain_tag(value) not in ev.TEXT_TAGS}
    unknown = [value for value in typed if value not in _BARE]
    if unknown:
        _learn_bare(unknown)
    return not any(not _BARE[value] and _maybe_plain(value, text) for value in typed)


_BARE: dict[str, bool] = {}  # typed text -> whether ryml emits it, written plain, unquoted


def _learn_bare(values: list[str]) -> None:
    """Ask ryml once how it emits each of ``values`` written plain, in block and flow style:
    as a JSON number, bool or null (then a JSON string of that text was quoted), or a string."""
    if len(_BARE) > 100_000:
        _BARE.clear()
    emitted = _json(_ryml(), "".join(f"- {v}\n- {{a: {v}}}\n" for v in values).encode())
    try:
        items = orjson.loads(emitted[1]) if emitted is not None else []
    except orjson.JSONDecodeError:  # e.g. `+7` is emitted as is: not JSON
        items = []
    if len(items) != 2 * len(values) and len(values) > 1:
        for value in values:  # one spoiled the lot: each alone
            _learn_bare([value])
        return
    if len(items) != 2 * len(values):
        items = ["", ""]  # unsure: not bare
    for value, block, flow in zip(values, items[::2], items[1::2], strict=True):
        _BARE[value] = (type(block) is not str and type(flow) is dict
                        and type(flow.get("a", "")) is not str)


def _maybe_plain(value: str, text: str) -> bool:
    """Whether some occurrence of ``value`` in ``text`` could be a plain scalar of just it."""
    here = re.escape(value)
    return re.search(here + r"(?![^\s,\]}:])(?<![^\s\[{,:]" + here + ")", text) is not None


def _json(ryml: Any, data: bytes) -> tuple[bool, bytearray] | None:
    """ryml's JSON of ``data`` and whether it is a stream of documents; None on its error.

    A large stream is parsed a slice of documents at a time (``_chunks``) into one small tree,
    reused, instead of all at once into a tree of every node (some 30 MB for 10,000 events,
    touched page by page, then freed); the slices' JSON joined is byte for byte the whole
    stream's, which is what is read instead when any slice does not parse as a stream."""
    chunks = _chunks(data)
    with _quiet_stderr() as quiet:
        if not quiet:
            return None
        joined = _json_of_chunks(ryml, chunks) if len(chunks) > 1 else None
        return (True, joined) if joined is not None else _json_of(ryml, data)


CHUNK_BYTES = 262_144  # YAML per ryml parse of a large stream (tests set it lower)
_STREAM_START, _STREAM_END = b"[\n", b"\n]\n"  # how ryml's JSON of a stream opens and ends


def _chunks(data: bytes) -> list[bytes]:
    """``data`` cut before document markers (``---`` opening a line, then a space, a line
    break or the end: where libyaml starts a document) about every ``CHUNK_BYTES``."""
    out, start, find = [], 0, data.find
    at = CHUNK_BYTES
    while at < len(data):
        marker = find(b"\n---", at)
        if marker < 0:
            break
        if data[marker + 4 : marker + 5] not in (b"", b" ", b"\n"):
            at = marker + 1
            continue
        out.append(data[start : marker + 1])
        start = marker + 1
        at = start + CHUNK_BYTES
    out.append(data[start:])
    return out


def _json_of_chunks(ryml: Any, chunks: list[bytes]) -> bytearray | None:
    """The JSON of the stream ``chunks`` make, one tree and one output buffer reused; None
    unless every chunk parses and is a stream (stderr already quiet)."""
    tree, largest = ryml.Tree(), max(chunks, key=len)
    tree.reserve(_nodes(largest))  # about what a chunk needs (a denser one grows the tree)
    tree.reserve_arena(len(largest) + 4096)
    joined, out = bytearray(_STREAM_START), bytearray()
    try:
        for chunk in chunks:
            tree.clear()
            tree.clear_arena()
            ryml.parse_in_arena(chunk, tree)
            root = tree.root_id()
            size = _emit_into(ryml, tree, root, out, len(chunk))
            json = memoryview(out)[:size]
            if not tree.is_stream(root) or not (json[:2] == _STREAM_START
                                                and json[-3:] == _STREAM_END):
                return None
            joined += json[len(_STREAM_START) : -len(_STREAM_END)]
            joined += b",\n"
            json.release()
    except ryml.ExceptionBasic:
        return None
    joined[-2:] = _STREAM_END  # the last separator
    return joined


def _json_of(ryml: Any, data: bytes) -> tuple[bool, bytearray] | None:
    """``_json`` of ``data`` parsed at once (stderr already quiet)."""
    tree = ryml.Tree()
    tree.reserve(_nodes(data))  # no regrowth
    tree.reserve_arena(len(data) + 4096)
    out = bytearray()
    try:
        ryml.parse_in_arena(data, tree)
        root = tree.root_id()
        del out[_emit_into(ryml, tree, root, out, len(data)):]
    except ryml.ExceptionBasic:
        return None
    return (bool(tree.is_stream(root)), out) if out else None


def _nodes(data: bytes) -> int:
    """About how many nodes ryml's tree of ``data`` has."""
    return sum(map(data.count, (b":", b",", b"[", b"- "))) + 16


def _emit_into(ryml: Any, tree: Any, root: int, out: bytearray, size: int) -> int:
    """Emit the JSON of ``tree`` at the start of ``out`` (grown as needed); its length."""
    want = size * 8 // 5 + 4096  # the JSON's indentation makes it ~1.5x the YAML
    if len(out) < want:
        out.extend(bytes(want - len(out)))
    while True:
        failed, needed = ryml.emit_json_to_substr(tree, root, out)
        if not failed:
            return int(needed)
        out.extend(bytes(needed - len(out)))


@contextmanager
def _quiet_stderr() -> Iterator[bool]:
    """File descriptor 2 on /dev/null meanwhile (ryml prints its errors there); False: can't."""
    with suppress(ValueError, OSError):  # a closed or broken sys.stderr: nothing to flush
        if sys.stderr is not None:
            sys.stderr.flush()
    try:
        null, saved = _devnull(), os.dup(2)
    except OSError:
        yield False
        return
    try:
        os.dup2(null, 2)
        yield True
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@cache
def _devnull() -> int:
    return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


@cache
def _ryml() -> Any:
    try:
        import ryml  # type: ignore[import-untyped]
    except ImportError:
        return None
    return ryml
