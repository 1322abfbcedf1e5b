"""Writing exported manifests (``convctl import``) to disk, canonically formatted.

Each file opens with a ``# yaml-language-server: $schema=`` line so editors validate it. The
schema is assumed at ``<repo root>/schemas/convctl.schema.json`` with the repo root being the
current folder (where ``convctl`` runs, as for the default ``manifests/``); the link is the path
from the written file's folder to it, always relative (``../../schemas/convctl.schema.json`` for
``--out manifests``), so the files stay valid when the repository is cloned elsewhere.
Existing files are never overwritten unless asked; nothing is written when any would be, nor
when a live account's name (stored before names were checked, E106) would lead outside the
output folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.adapters.fmt import dump_documents, write_atomic
from reconciler.errors import UsageError

SCHEMA_FILE = Path("schemas") / "convctl.schema.json"


def schema_link(target: Path, root: Path) -> str:
    """Relative (POSIX) path from ``target``'s folder to the combined schema under ``root``."""
    start = os.path.abspath(target.parent)
    return Path(os.path.relpath(os.path.abspath(root / SCHEMA_FILE), start)).as_posix()


def render_files(files: dict[str, list[dict[str, Any]]], out_dir: Path,
                 root: Path) -> dict[Path, str]:
    """Target path -> canonical YAML text of every exported file."""
    rendered: dict[Path, str] = {}
    for rel, docs in files.items():
        target = out_dir / rel
        if target.resolve().parent.parent != out_dir.resolve():
            raise UsageError(f"refusing to import into {target}: not one folder below {out_dir} "
                             "(a live account's name is not a valid name, E106)")
        header = f"yaml-language-server: $schema={schema_link(target, root)}"
        rendered[target] = dump_documents(docs, header)
    return rendered


def write_files(rendered: dict[Path, str], *, force: bool) -> list[Path]:
    """Write every file (atomically); refuses, writing nothing, when a target exists and not
    ``force``. Returns the paths written."""
    existing = [p for p in rendered if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise UsageError(f"refusing to overwrite {names}; use --force or another --out")
    written: list[Path] = []
    for path, text in rendered.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
        except OSError as exc:
            done = ", ".join(str(p) for p in written) or "nothing"
            raise UsageError(f"cannot write {path}: {exc.strerror} (written so far: {done})"
                             ) from exc
        written.append(path)
    return written
