"""Reading manifests from disk: discovery, limits, decoding, then parsing and checking.

``load(paths)`` finds every ``*.yaml``/``*.yml`` under the given folders (or the given files) in a
deterministic order, refuses what must not be read (oversized files, non-UTF-8, symlinks leaving
the manifests root), parses each file (``yamlparse``) and hands the documents to the pure core
(``core.validate``, ``core.rules``). The result carries every diagnostic of the run.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reconciler.core.credentials import DEFAULT_SECRETS_DIR, SECRETS_DIR_ENV
from reconciler.core.rules import check
from reconciler.core.source import RawDocument
from reconciler.core.validate import ManifestSet, build
from reconciler.diagnostics import Diagnostics, SourceLocation

MAX_FILE_BYTES = 5 * 1024 * 1024
SUFFIXES = (".yaml", ".yml")
_FREEZE_ABOVE = 200_000  # tracked objects, about 2,000 documents


def discover(paths: Sequence[str | Path], diags: Diagnostics) -> list[Path]:
    """Files to read, in order: folders walked (sorted, hidden entries skipped), files as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(_walk(path, path.resolve(), diags))
        elif path.is_file():
            found.append(path)
        elif path.exists():
            diags.error("E001", "not a regular file; refused", SourceLocation(str(path)))
        else:
            diags.error("E001", "no such file or folder", SourceLocation(str(path)))
    return found


def _walk(folder: Path, root: Path, diags: Diagnostics) -> Iterable[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        diags.error("E001", f"cannot read folder: {exc.strerror}", SourceLocation(str(folder)))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        if entry.is_symlink() and not _inside(path, root):
            if entry.name.endswith(SUFFIXES) or path.is_dir():
                diags.error("E007", "symlink points outside the manifests root; refused",
                            SourceLocation(str(path)))
            continue
        if entry.is_symlink() and path.is_dir():
            continue  # inside the root: walked already (and a loop would never end)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path, root, diags)
        elif entry.name.endswith(SUFFIXES) and entry.is_file():
            yield path
        elif entry.name.endswith(SUFFIXES):  # a FIFO or device would block or never end
            diags.error("E001", "not a regular file (or a dangling symlink); refused",
                        SourceLocation(str(path)))


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # symlink loops
        return False


def read_text(path: Path, diags: Diagnostics) -> str | None:
    """The file's text, or ``None`` with a diagnostic (too big, unreadable, not UTF-8)."""
    where = SourceLocation(str(path))
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            diags.error("E006", f"file is {size} bytes; the limit is {MAX_FILE_BYTES} (5 MiB)",
                        where)
            return None
        data = path.read_bytes()
    except OSError as exc:
        diags.error("E001", f"cannot read file: {exc.strerror}", where)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        diags.error("E001", f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                    SourceLocation(str(path), line, col))
        return None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        diags.error("E001", "file contains NUL bytes; not a text file",
                    SourceLocation(str(path), line, col))
        return None
    return text.removeprefix("\ufeff")


def parse_files(paths: Sequence[str | Path], diags: Diagnostics) -> list[RawDocument]:
    """Parse every manifest file under ``paths``, in order.

    One core: parsing the two halves of a large set in two processes was measured slower
    whenever the second core was busy (a shared CI runner, a laptop): bench/RESULTS.md."""
    from reconciler.adapters.yamlparse import parse_documents

    docs: list[RawDocument] = []
    for path in discover(paths, diags):
        text = read_text(path, diags)
        if text is not None:
            docs.extend(parse_documents(text, str(path), diags))
    return docs


def load(paths: Sequence[str | Path], *,
         secrets_dir: str | None = None) -> tuple[ManifestSet, Diagnostics]:
    """Load, validate and check every manifest under ``paths``.

    ``secrets_dir`` is the agent's secrets folder ``file:`` references must point into
    (default: ``CONVCTL_SECRETS_DIR``, else ``/run/secrets``)."""
    folder = secrets_folder(secrets_dir)
    with _bulk_gc():
        diags = Diagnostics()
        docs = parse_files(paths, diags)
        manifests = build(docs, diags)
        check(manifests, diags, secrets_dir=folder)
    return manifests, diags


def secrets_folder(given: str | None = None) -> str:
    """The secrets folder, absolute: ``given``, else ``CONVCTL_SECRETS_DIR``, else the default."""
    return os.path.abspath(given or os.environ.get(SECRETS_DIR_ENV) or DEFAULT_SECRETS_DIR)


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector off the bulk allocation of a load.

    A load allocates tens of long-lived objects per node (data, positions, models), none of them
    in a reference cycle. Left on, the collector rescans the growing heap again and again (a
    10,000-event load spent most of its time there, and it grew superlinearly), then once more
    after the load and at exit. So collection is paused during the load, and what a large load
    allocated is frozen afterwards (``gc.freeze``): reference counting still frees all of it when
    dropped; the collector just never scans it. Small loads (tests, a typical repo) are left to
    the collector as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > _FREEZE_ABOVE:  # objects allocated (net) while paused
            gc.freeze()
        if was_enabled:
            gc.enable()
