"""The house rules, enforced: import layers and a pure core, ruff, mypy --strict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else (shutil.which(name) or name)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)


def test_import_contracts() -> None:
    proc = _run(_tool("lint-imports"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
    # The forbidden contract must really see stdlib modules (include_external_packages).
    assert "The core is pure: no I/O libraries KEPT" in proc.stdout


def test_ruff() -> None:
    proc = _run(_tool("ruff"), "check", "reconciler", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict() -> None:
    proc = _run(_tool("mypy"), "reconciler")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pure_core_contract_catches_stdlib_io(tmp_path: Path) -> None:
    """The forbidden contract really checks stdlib modules: sqlite3 in the core breaks it."""
    shutil.copytree(REPO / "reconciler", tmp_path / "reconciler",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    quota = tmp_path / "reconciler" / "core" / "quota.py"
    quota.write_text(quota.read_text().replace("from __future__ import annotations\n",
                                               "from __future__ import annotations\n\n"
                                               "import sqlite3  # noqa: F401\n", 1))
    proc = subprocess.run([_tool("lint-imports")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False, env={"PYTHONPATH": str(tmp_path),
                                                         "PATH": str(BIN)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "reconciler.core.quota -> sqlite3" in proc.stdout
