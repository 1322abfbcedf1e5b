"""``convctl validate``: exact output, exit codes, JSON, no tracebacks, no writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
BROKEN = REPO / "tests" / "data" / "broken"
CONVCTL = shutil.which("convctl") or str(Path(sys.executable).parent / "convctl")

ACCOUNT = """\
apiVersion: convctl/v1
kind: Account
metadata:
  name: acme
spec:
  portalId: 4412345
  tier: professional
  leadSync: true
  facebook:
    businessId: "1122334455"
    pixelId: "123456789012345"
    adAccounts: [act_1234567890]
    accessToken: {env: ACME_META_TOKEN}
"""
EVENT = """\
apiVersion: convctl/v1
kind: ConversionEvent
metadata:
  name: funnel
spec:
  account: acme
  adAccount: act_1234567890
  trigger:
    lifecycleStageChange:
      stages: [lead, customer, other]
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    (tmp_path / "a.yaml").write_text(ACCOUNT + "---\n" + EVENT)
    (tmp_path / "b.yaml").write_text(ACCOUNT.replace("name: acme", "name: Bad").replace(
        "4412345", "1"))
    return tmp_path


def test_shipped_manifests_ok() -> None:
    code, out, err = invoke("validate", str(REPO / "manifests"))
    assert (code, err) == (0, "")
    assert out == "2 accounts, 7 events, 12/150 lifecycle-stage slots used: OK\n"


def test_default_path_is_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code, out, _ = invoke("validate")
    assert code == 0 and out.endswith("lifecycle-stage slots used: OK\n")


def test_errors_exact_text_and_exit_1(broken_dir: Path) -> None:
    code, out, err = invoke("validate", str(broken_dir))
    a, b = broken_dir / "a.yaml", broken_dir / "b.yaml"
    assert code == 1
    assert err.splitlines() == [
        f"{a}:24:32: error[E304]: the lifecycle stage 'other' is not supported (R6)",
        f"{b}:4:9: error[E106]: invalid name 'Bad': use lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters",
    ]
    assert out == "2 accounts, 1 event, 3/100 lifecycle-stage slots used: 2 errors, 0 warnings\n"


def test_warnings_only_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(ACCOUNT.replace("  leadSync: true\n",
                                    "  leadSync: true\n  syncWebConversions: false\n"))
    code, out, err = invoke("validate", str(path))
    assert code == 0
    assert err == (f"{path}:9:23: warning[W302]: account 'acme' has syncWebConversions off: its "
                   "events exist but Meta cannot use them to optimize ad delivery (R17)\n")
    assert out == "1 account, 0 events, 0/50 lifecycle-stage slots used: OK with 1 warning\n"


def test_json_format(broken_dir: Path) -> None:
    code, out, _ = invoke("validate", str(broken_dir), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 2
    assert data[0] == {"severity": "error", "code": "E304",
                       "message": "the lifecycle stage 'other' is not supported", "rule": "R6",
                       "file": str(broken_dir / "a.yaml"), "line": 24, "col": 32}
    for item in data:
        assert set(item) == {"severity", "code", "message", "rule", "file", "line", "col"}


def test_json_format_valid_is_empty_array() -> None:
    code, out, _ = invoke("validate", str(REPO / "manifests"), "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_whole_broken_corpus_one_run_no_traceback() -> None:
    code, out, err = invoke("validate", str(BROKEN))
    assert code == 1
    assert "Traceback" not in err + out
    files = {line.split(":", 1)[0] for line in err.splitlines()}
    assert len(files) == len(list(BROKEN.glob("*.yaml")))  # every file reported, in one run


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def test_validate_writes_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(REPO / "manifests", work / "manifests")
    shutil.copytree(BROKEN, work / "broken")
    before = _snapshot(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run([CONVCTL, "validate", "manifests", "broken"], cwd=work, env=env,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert _snapshot(tmp_path) == before


def test_real_subprocess() -> None:
    ok = subprocess.run([CONVCTL, "validate", str(REPO / "manifests")], capture_output=True,
                        text=True, timeout=60, check=False)
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout == "2 accounts, 7 events, 12/150 lifecycle-stage slots used: OK\n"
    bad = subprocess.run([CONVCTL, "validate", str(BROKEN / "e305-unknown-stage.yaml")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1
    assert bad.stderr == (
        f"{BROKEN / 'e305-unknown-stage.yaml'}:30:22: error[E305]: unknown lifecycle stage "
        "'9999999999'; custom stages must be declared in the account's customLifecycleStages "
        "(R6)\n")
    assert bad.stdout.endswith(": 1 error, 0 warnings\n")


GARBAGE = [b"\xff\xfe\x00\x00", b"{{{{", b"a: !!python/name:os.system", b"- " * 3000 + b"x",
           b"\x1b[31m", b"a: &a [*a]", b"? [a]\n: b\n"]


def test_garbage_never_tracebacks_in_a_subprocess(tmp_path: Path) -> None:
    for i, data in enumerate(GARBAGE):
        (tmp_path / f"x{i}.yaml").write_bytes(data)
    proc = subprocess.run([CONVCTL, "validate", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    reported = {line.split(":", 1)[0] for line in proc.stderr.splitlines()}
    assert reported == {str(tmp_path / f"x{i}.yaml") for i in range(len(GARBAGE))}


def test_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    code, _, err = invoke("validate", str(tmp_path / "nope"))
    assert code == 1
    assert err == f"{tmp_path / 'nope'}: error[E001]: no such file or folder\n"


def test_the_help_examples_run_on_the_shipped_repository(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Issue 12: the help cited manifests/acme.yaml, which does not exist."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    shown = CliRunner().invoke(cli, ["validate", "--help"]).stdout
    examples = [line.split()[1:] for line in shown.splitlines()
                if line.strip().startswith("convctl validate")]
    assert len(examples) >= 2
    for args in examples:
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 0, (args, done.output)
