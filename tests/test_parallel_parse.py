"""Large manifest sets are parsed on two cores: the result must be exactly the sequential one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.adapters.manifests import parse_files
from reconciler.diagnostics import Diagnostics

ROOT = Path(__file__).resolve().parents[1]


def _both(paths: list[Path]) -> tuple[tuple[list, list], tuple[list, list]]:  # type: ignore[type-arg]
    seq, par = Diagnostics(), Diagnostics()
    one = parse_files(paths, seq, parallel_min_chars=1 << 60)
    two = parse_files(paths, par, parallel_min_chars=0)
    return (one, seq.sorted()), (two, par.sorted())


@pytest.mark.parametrize("folder", ["manifests", "tests/data/broken"])
def test_two_cores_give_the_sequential_result(folder: str) -> None:
    sequential, parallel = _both([ROOT / folder])
    assert parallel == sequential
    assert sequential[0], "the folder holds documents"


def _events(n: int, start: int = 0) -> str:
    return "".join(
        f"---\napiVersion: convctl/v1\nkind: ConversionEvent\nmetadata: {{name: e-{i}}}\n"
        f"spec:\n  account: acme\n  adAccount: act_1\n  trigger:\n"
        f"    lifecycleStageChange: {{stages: [lead]}}\n" for i in range(start, start + n))


def test_a_file_cut_in_two_keeps_every_position(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(_events(400))
    sequential, parallel = _both([tmp_path / "big.yaml"])
    assert parallel == sequential
    last = parallel[0][-1]
    assert last.data["metadata"]["name"] == "e-399"
    assert last.source.at(("spec", "account")).line == 399 * 9 + 6  # 9 lines per document


@pytest.mark.parametrize("broken", ["first", "second"])
def test_a_syntax_error_in_either_half_gives_the_sequential_result(tmp_path: Path,
                                                                    broken: str) -> None:
    text = _events(200) + _events(200, 200)
    at = text.index("name: e-20}") if broken == "first" else text.index("name: e-380}")
    (tmp_path / "big.yaml").write_text(text[:at] + "name: [e-x}" + text[at + 11:])
    (tmp_path / "more.yaml").write_text(_events(50, 1000))
    sequential, parallel = _both([tmp_path])
    assert parallel == sequential
    assert [d.code for d in parallel[1]] == ["E002"]


def test_several_files_split_between_the_cores(tmp_path: Path) -> None:
    for i in range(7):
        (tmp_path / f"f{i}.yaml").write_text(_events(30, i * 100))
    shutil.copy(ROOT / "manifests/acme/account.yaml", tmp_path / "account.yaml")
    sequential, parallel = _both([tmp_path])
    assert parallel == sequential and len(parallel[0]) == 211


def test_without_a_second_process_it_parses_on_one_core(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without fork or POSIX semaphores (OSError) still gets the full, exact result."""
    import multiprocessing

    def no_fork(method: str | None = None) -> None:
        raise OSError("no semaphores here")

    (tmp_path / "big.yaml").write_text(_events(100))
    sequential, _ = _both([tmp_path])
    monkeypatch.setattr(multiprocessing, "get_context", no_fork)
    diags = Diagnostics()
    assert parse_files([tmp_path], diags, parallel_min_chars=0) == sequential[0]
    assert not diags.items
