"""Where each manifest value came from: a per-document map from data path to 1-based position.

A *path* is a tuple of mapping keys and sequence indexes from the document root, e.g.
``("spec", "trigger", "lifecycleStageChange", "stages", 2)``. Lookups fall back to the nearest
ancestor so a finding always has a position, pointing at the offending node where it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from reconciler.diagnostics import SourceLocation

Path = tuple[str | int, ...]
Position = tuple[int, int]


@dataclass(frozen=True)
class SourceMap:
    """Positions of one YAML document: ``values[path]`` and, for mapping keys, ``keys[path]``."""

    file: str
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def at(self, path: Path, *, key: bool = False) -> SourceLocation:
        """Location of the value (or of its key) at ``path``, else of the nearest ancestor."""
        if key and path in self.keys:
            line, col = self.keys[path]
            return SourceLocation(self.file, line, col)
        probe = path
        while True:
            if probe in self.values:
                line, col = self.values[probe]
                return SourceLocation(self.file, line, col)
            if not probe:
                return SourceLocation(self.file)
            probe = probe[:-1]


@dataclass(frozen=True)
class RawDocument:
    """One parsed YAML document: plain data plus its source map.

    ``refused`` documents were already reported by the parser; ``data`` then holds only their
    identity (``kind``, ``metadata.name``) so references to them are not reported again.
    """

    data: Any
    source: SourceMap
    refused: bool = False


T = TypeVar("T")


@dataclass(frozen=True)
class Located(Generic[T]):
    """A validated model and where it was declared."""

    model: T
    source: SourceMap

    def at(self, *path: str | int, key: bool = False) -> SourceLocation:
        return self.source.at(tuple(path), key=key)
