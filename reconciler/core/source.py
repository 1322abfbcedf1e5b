"""Where each manifest value came from: a per-document map from data path to 1-based position.

A *path* is a tuple of mapping keys and sequence indexes from the document root, e.g.
``("spec", "trigger", "lifecycleStageChange", "stages", 2)``. Lookups fall back to the nearest
ancestor so a finding always has a position, pointing at the offending node where it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reconciler.diagnostics import SourceLocation

Path = tuple[str | int, ...]
Position = tuple[int, int]


class SourceMap:
    """Positions of one YAML document: ``values[path]`` and, for mapping keys, ``keys[path]``.

    ``locate``, when given, returns both maps the first time either is used: the loader parses a
    file's positions only when a diagnostic (or a caller) asks for one (``adapters.yamlparse``).
    """

    __slots__ = ("_keys", "_locate", "_values", "file")

    def __init__(self, file: str, values: dict[Path, Position] | None = None,
                 keys: dict[Path, Position] | None = None, *,
                 locate: Callable[[], tuple[dict[Path, Position], dict[Path, Position]]]
                 | None = None) -> None:
        self.file = file
        self._values = {} if values is None else values
        self._keys = {} if keys is None else keys
        self._locate = locate

    @property
    def values(self) -> dict[Path, Position]:
        if self._locate is not None:
            self._fill()
        return self._values

    @property
    def keys(self) -> dict[Path, Position]:
        if self._locate is not None:
            self._fill()
        return self._keys

    def _fill(self) -> None:
        assert self._locate is not None
        self._values, self._keys = self._locate()
        self._locate = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourceMap):
            return NotImplemented
        return (self.file, self.values, self.keys) == (other.file, other.values, other.keys)

    __hash__ = None  # type: ignore[assignment]  # mutable maps, as the dataclass had

    def __repr__(self) -> str:
        return f"SourceMap({self.file!r}, {len(self.values)} values, {len(self.keys)} keys)"

    def at(self, path: Path, *, key: bool = False) -> SourceLocation:
        """Location of the value (or of its key) at ``path``, else of the nearest ancestor."""
        keys, values = self.keys, self.values
        if key and path in keys:
            line, col = keys[path]
            return SourceLocation(self.file, line, col)
        probe = path
        while True:
            if probe in values:
                line, col = values[probe]
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
