"""``convctl fmt``: comments travel with their keys when ``fmt_order`` moves the keys.

A comment line belongs to the key below it, an end-of-line comment to its own line; comments
at the start of a mapping (the file header included) stay at its start. ruamel.yaml keeps
comments on the node *before* them, so they are taken off every slot (a key or sequence item,
in document order), the keys reordered, and the comments put back on the slots they belong to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from reconciler.adapters.fmt_order import Shape, reorder


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


def move_comments(doc: CommentedMap, shape: Shape) -> None:
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
    reorder(doc, shape)
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
