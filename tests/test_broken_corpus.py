"""The broken-manifest corpus: one mistake per file, the expected findings in the file itself.

Each ``tests/data/broken/<case>.yaml`` starts with ``# expect: CODE LINE:COL [Rnn]`` lines; the run
must produce exactly those diagnostics (no more: cascades are noise a user has to wade through).
Adding a case is adding a file. Cases that cannot be committed as text (bytes, sizes, symlinks)
are generated below in ``tmp_path``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.adapters.manifests import MAX_FILE_BYTES, load
from reconciler.cli.main import cli

BROKEN = Path(__file__).parent / "data" / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: ([EW]\d{3}) (\d+):(\d+)(?: (R\d+))?\s*$")
REPO = Path(__file__).resolve().parents[1]

VALID_ACCOUNT = """\
apiVersion: convctl/v1
kind: Account
metadata:
  name: acme
spec:
  portalId: 4412345
  tier: professional
  facebook:
    businessId: "1122334455"
    pixelId: "123456789012345"
    adAccounts: [act_1234567890]
    accessToken: {env: ACME_META_TOKEN}
"""


def expectations(path: Path) -> list[tuple[str, int, int, str | None]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        match = EXPECT.match(line)
        if match:
            code, ln, col, rule = match.groups()
            found.append((code, int(ln), int(col), rule))
    return found


def findings(path: Path) -> list[tuple[str, int, int, str | None]]:
    _, diags = load([path])
    out = []
    for d in diags.sorted():
        assert d.location is not None and d.location.file == str(path)
        out.append((d.code, d.location.line, d.location.col, d.rule))
    return out


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_case(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    assert sorted(findings(path)) == sorted(expected)


def _load_bytes(tmp_path: Path, data: bytes) -> list[tuple[str, int, int, str | None]]:
    path = tmp_path / "case.yaml"
    path.write_bytes(data)
    _, diags = load([path])
    return [(d.code, d.location.line, d.location.col, d.rule) for d in diags.sorted()
            if d.location]


def test_e001_not_utf8_points_at_the_bad_byte(tmp_path: Path) -> None:
    data = VALID_ACCOUNT.replace("name: acme", "name: acm\xe9").encode("latin-1")
    assert _load_bytes(tmp_path, data) == [("E001", 4, 12, None)]


def test_e001_nul_byte(tmp_path: Path) -> None:
    data = VALID_ACCOUNT.encode().replace(b"tier: professional", b"tier: prof\x00essional")
    assert _load_bytes(tmp_path, data) == [("E001", 7, 13, None)]


def test_e001_missing_path(tmp_path: Path) -> None:
    _, diags = load([tmp_path / "nope"])
    assert [d.code for d in diags] == ["E001"]
    assert "no such file" in diags.items[0].message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert _load_bytes(tmp_path, b"\xef\xbb\xbf" + VALID_ACCOUNT.encode()) == []


def test_e002_control_character_has_a_position(tmp_path: Path) -> None:
    data = VALID_ACCOUNT.encode().replace(b"tier: professional", b"tier: pro\x07")
    assert _load_bytes(tmp_path, data) == [("E002", 7, 12, None)]


def test_e006_file_over_5_mib(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    filler = "# padding\n" * (MAX_FILE_BYTES // 10 + 1)
    path.write_text(VALID_ACCOUNT + filler)
    assert path.stat().st_size > 5 * 1024 * 1024
    _, diags = load([tmp_path])
    assert [(d.code, str(d.location)) for d in diags] == [("E006", str(path))]
    assert "5 MiB" in diags.items[0].message


def test_exactly_5_mib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    body = VALID_ACCOUNT.encode()
    path.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body)))
    manifests, diags = load([tmp_path])
    assert list(diags) == [] and [a.model.name for a in manifests.accounts] == ["acme"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_e007_symlink_leaving_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(VALID_ACCOUNT)
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "escape.yaml").symlink_to(outside / "secret.yaml")
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    manifests, diags = load([root])
    assert sorted((d.code, d.location.file) for d in diags if d.location) == [
        ("E007", str(root / "escape-dir")), ("E007", str(root / "escape.yaml"))]
    assert manifests.accounts == []


def test_symlink_loop_inside_the_root_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    (root / "a").mkdir(parents=True)
    (root / "a" / "acme.yaml").write_text(VALID_ACCOUNT)
    (root / "a" / "up").symlink_to("..", target_is_directory=True)
    manifests, diags = load([root])
    assert list(diags) == []
    assert [a.model.name for a in manifests.accounts] == ["acme"]


def test_fifo_is_refused_not_read(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs mkfifo")
    os.mkfifo(tmp_path / "pipe.yaml")
    _, diags = load([tmp_path])  # would block forever if the FIFO were opened
    assert [d.code for d in diags] == ["E001"]


def test_e104_token_never_appears_in_any_output() -> None:
    secrets = {"e104-literal-token.yaml": "EAABsbCS1iHgBAKZtopSecret",
               "e104-token-in-env.yaml": "EAABsbCS1iHg/BAKZ+topSecretValue=="}
    runner = CliRunner()
    for name, token in secrets.items():
        path = BROKEN / name
        assert token in path.read_text()
        for fmt in ("text", "json"):
            result = runner.invoke(cli, ["validate", str(path), "--format", fmt])
            assert result.exit_code == 1
            assert "E104" in result.output
            assert token not in result.output
            assert token[:12] not in result.output
        _, diags = load([path])
        assert all(token[:12] not in d.render() for d in diags)


def test_e101_says_did_you_mean() -> None:
    _, diags = load([BROKEN / "e101-unknown-field.yaml"])
    assert diags.items[0].message == (
        "unknown field 'leadSynk' at spec.leadSynk; did you mean 'leadSync'?")


def test_e308_suggests_the_standard_event() -> None:
    _, diags = load([BROKEN / "e308-lowercase-standard-event.yaml"])
    assert "did you mean 'Lead'?" in diags.items[0].message


def test_e313_message_has_the_count_and_the_limit() -> None:
    _, diags = load([BROKEN / "e313-quota-professional.yaml"])
    (quota,) = [d for d in diags if d.code == "E313"]
    assert "52" in quota.message and "limit 50" in quota.message
    assert "from 50 to 52" in quota.message


def test_w305_linkedin_version_near_its_end(tmp_path: Path) -> None:
    """A Linkedin-Version 10 or 11 months old warns (LinkedIn serves one for 12 months)."""
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    months = today.year * 12 + today.month - 1 - 10
    version = f"{months // 12}{months % 12 + 1:02d}"
    data = VALID_ACCOUNT + (f"  linkedin:\n    adAccount: urn:li:sponsoredAccount:5\n"
                            f"    accessToken: {{env: ACME_LINKEDIN_TOKEN}}\n"
                            f"    version: \"{version}\"\n")
    assert _load_bytes(tmp_path, data.encode()) == [("W305", 16, 14, None)]


# The modules of the manifests capability (load -> parse -> validate -> rules).
MANIFEST_MODULES = ("core/models.py", "core/validate.py", "core/rules.py",
                    "core/network_rules.py", "adapters/manifests.py", "adapters/yamlparse.py",
                    "adapters/yamlevents.py")


def _emitted_codes() -> set[str]:
    codes: set[str] = set()
    for name in MANIFEST_MODULES:
        text = (REPO / "reconciler" / name).read_text(encoding="utf-8")
        codes |= set(re.findall(r'"([EW]\d{3})"', text))
    assert len(codes) > 30  # the scan itself works
    return codes


def test_every_emitted_code_is_covered() -> None:
    covered = {code for path in CASES for code, *_ in expectations(path)}
    # Codes exercised by the generated cases above (bytes, sizes, symlinks).
    covered |= {"E001", "E006", "E007"}
    covered |= {"W305"}  # dated by today: test_w305_linkedin_version_near_its_end
    missing = _emitted_codes() - covered
    assert not missing, f"no broken case for {sorted(missing)}"
