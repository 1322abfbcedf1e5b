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
from reconciler.core.scope import Scope, doc_in_scope
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


PARALLEL_MIN_CHARS = 2 * 1024 * 1024  # below this, a second process costs more than it saves
Unit = tuple[str, str]  # (file name, text); a split file's second half is padded with newlines


def parse_files(paths: Sequence[str | Path], diags: Diagnostics, *,
                parallel_min_chars: int = PARALLEL_MIN_CHARS) -> list[RawDocument]:
    """Parse every manifest file; a large set is parsed on two cores (same result, in order)."""
    units: list[Unit] = []
    for path in discover(paths, diags):
        text = read_text(path, diags)
        if text is not None:
            units.append((str(path), text))
    total = sum(len(text) for _, text in units)
    if total < parallel_min_chars or (os.cpu_count() or 1) < 2:
        return _parse_units(units, diags)
    return _parse_in_two(units, total, diags)


def _parse_units(units: Sequence[Unit], diags: Diagnostics) -> list[RawDocument]:
    from reconciler.adapters.yamlparse import parse_documents

    docs: list[RawDocument] = []
    for file, text in units:
        docs.extend(parse_documents(text, file, diags))
    return docs


def _parse_worker(units: list[Unit]) -> tuple[list[RawDocument], Diagnostics]:
    diags = Diagnostics()
    return _parse_units(units, diags), diags


def _parse_in_two(units: list[Unit], total: int, diags: Diagnostics) -> list[RawDocument]:
    """The first half here, the second in a forked child. A file cut in two is cut just before
    a ``---`` line (never inside a document) and its second half is padded with as many
    newlines as the first half has, so every position stays exact; if either half of it has a
    syntax error, that file is parsed again whole, so the result is the sequential one."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    first, second, cut = _halves(units, total)
    mine, theirs = Diagnostics(), Diagnostics()
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            future = pool.submit(_parse_worker, second)
            docs = _parse_units(first, mine)
            theirs_docs, theirs = future.result()
    except (BrokenProcessPool, OSError, ValueError):  # no fork / semaphores here: one core
        return _parse_units(units, diags)
    if cut is not None and any(d.code == "E002" and d.location is not None
                               and d.location.file == cut[0] for d in [*mine, *theirs]):
        return _parse_units(units, diags)  # rare: redo it the plain way
    diags.extend(mine)
    diags.extend(theirs)
    return docs + theirs_docs


def _halves(units: list[Unit], total: int) -> tuple[list[Unit], list[Unit], Unit | None]:
    done = 0
    for i, (file, text) in enumerate(units):
        if done + len(text) < total // 2:
            done += len(text)
            continue
        cut = _document_boundary(text, total // 2 - done)
        if cut <= 0 or cut >= len(text):
            return units[:i + 1], units[i + 1:], None
        head, tail = text[:cut], text[cut:]
        return ([*units[:i], (file, head)],
                [(file, "\n" * head.count("\n") + tail), *units[i + 1:]], (file, text))
    return units, [], None


def _document_boundary(text: str, near: int) -> int:
    """Offset of the first ``---`` document-start line at or after ``near`` (0 if none)."""
    import re

    found = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE).search(text, max(near, 1))
    return found.start() if found else 0


def load(paths: Sequence[str | Path], *, secrets_dir: str | None = None,
         scope: Scope = None) -> tuple[ManifestSet, Diagnostics]:
    """Load, validate and check every manifest under ``paths`` (of the accounts ``scope``
    names: ``--account``; None: all).

    ``secrets_dir`` is the agent's secrets folder ``file:`` references must point into
    (default: ``CONVCTL_SECRETS_DIR``, else ``/run/secrets``)."""
    folder = secrets_folder(secrets_dir)
    with _bulk_gc():
        diags = Diagnostics()
        docs = [doc for doc in parse_files(paths, diags) if doc_in_scope(doc.data, scope)]
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
