"""``convctl fmt``'s canonical key order, derived from the models: each document's keys in the
pydantic fields' alias order of ``core/models.py`` (by its ``kind``), nested models likewise;
unknown keys keep their place after the known ones.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.core.models import KINDS, ConversionEvent, Metadata


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


def reorder(node: Any, shape: Shape) -> bool:
    """Put ``node``'s keys in canonical order, recursively; True when anything moved."""
    moved = False
    if isinstance(node, CommentedSeq):
        return any([reorder(item, shape) for item in node])
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
            moved = reorder(node[key], child) or moved
    return moved
