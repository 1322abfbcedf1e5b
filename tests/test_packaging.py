"""The package as users get it (issue 12, Packaging): the sdist builds the same wheel as the
tree, the metadata is complete (Apache-2.0, classifiers, LICENSE inside), and the wheel
installed into a fresh venv outside the repository runs the README walkthrough."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from test_readme import extract_blocks, run_session

REPO = Path(__file__).resolve().parent.parent


def _build(source: Path, out: Path, *kinds: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", *kinds,
                           "--outdir", str(out), str(source)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [built] = out.iterdir()
    return built


def _contents(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: hashlib.sha256(archive.read(name)).hexdigest()
                for name in archive.namelist()}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, the wheel built from that sdist)."""
    work = tmp_path_factory.mktemp("dist")
    sdist = _build(REPO, work / "sdist", "--sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    [tree] = (work / "unpacked").iterdir()
    return sdist, _build(tree, work / "wheel", "--wheel")


def test_the_sdist_builds_the_same_wheel_as_the_tree(dist: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    tree = tmp_path / "checkout"  # the working tree without build leftovers or caches
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".convctl"))
    from_tree = _build(tree, tmp_path / "tree", "--wheel")
    assert _contents(dist[1]) == _contents(from_tree)
    with tarfile.open(dist[0]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "docs/rules.md", "docs/backfill.md"} <= names


def test_the_metadata_is_complete(dist: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(dist[1]) as archive:
        names = archive.namelist()
        meta = Parser().parsestr(archive.read("convctl-0.1.0.dist-info/METADATA").decode())
        license_text = archive.read("convctl-0.1.0.dist-info/licenses/LICENSE").decode()
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Apache License" in license_text and "END OF TERMS AND CONDITIONS" in license_text
    assert license_text == (REPO / "LICENSE").read_text()
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers and len(classifiers) > 8
    assert meta["Requires-Python"] == ">=3.11" and meta["Summary"]
    assert {"reconciler/help/codes.md", "reconciler/help/rules.md", "reconciler/py.typed"} \
        <= set(names)
    ui = "reconciler/server/ui/"  # the dashboard's every asset ships in the wheel (no CDN)
    assert {f"{ui}templates/base.html", f"{ui}templates/events.html", f"{ui}static/app.css",
            f"{ui}static/app.js", f"{ui}static/favicon.svg"} <= set(names)
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_the_installed_wheel_runs_the_readme_walkthrough(dist: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    """A fresh venv outside the repository; the dependencies come from this venv's
    site-packages (a .pth line: no network), convctl itself only from the wheel."""
    started = time.monotonic()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(dist[1])], check=True, timeout=120)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    ours = sysconfig.get_paths()["purelib"]
    (Path(site.stdout.strip()) / "zz_deps.pth").write_text(ours + "\n")
    where = subprocess.run([str(python), "-c", "import reconciler; print(reconciler.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not the repo
    session = tmp_path / "session"
    session.mkdir()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    proc = run_session(extract_blocks(readme), "README.md", session, venv / "bin")
    assert proc.returncode == 0, proc.stderr[-3000:]
    explained = subprocess.run([str(venv / "bin" / "convctl"), "explain", "E313"],
                               capture_output=True, text=True, check=False, cwd=tmp_path)
    assert explained.returncode == 0 and "R9:" in explained.stdout
    assert time.monotonic() - started < 60
