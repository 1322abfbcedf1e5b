"""``convctl fmt``: canonical layout, comments kept, idempotent, --check / --diff, broken files."""

from __future__ import annotations

import functools
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters.fmt import format_text
from reconciler.adapters.fmt_order import shape_of
from reconciler.adapters.manifests import load
from reconciler.cli.main import cli
from reconciler.core.models import AccountSpec, EventSpec, Metadata

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "manifests").rglob("*.yaml"))

MESSY = """\
# yaml-language-server: $schema=../../schemas/convctl.schema.json
# Demo requests.
kind: ConversionEvent   # the kind
spec:
    # where it fires
    trigger:
        formSubmission:
            consent: {value: "yes", property: fb_consent}
            # the form
            formId: f-1
            facebookEvent: Lead
    account: acme     # the account
    dataSharing:
        properties:
        -   email
        # sent as external_id
        -   {as: external_id, property: hs_object_id}
    adAccount: act_1
metadata:
    labels: {team: growth, area: ads}
    name: demo-request
apiVersion: convctl/v1
---
apiVersion: convctl/v1
kind: Account
metadata: {name: acme}
spec:
  facebook: {pixelId: "123456", businessId: '1122334455', adAccounts: [a], accessToken: {env: T}}
  tier: professional
  portalId: 1
  forms:
  - {name: Demo, id: f-1}
"""

MESSY_FORMATTED = """\
# yaml-language-server: $schema=../../schemas/convctl.schema.json
# Demo requests.
apiVersion: convctl/v1
kind: ConversionEvent   # the kind
metadata:
  name: demo-request
  labels: {team: growth, area: ads}
spec:
  account: acme       # the account
  adAccount: act_1
  # where it fires
  trigger:
    formSubmission:
      # the form
      formId: f-1
      facebookEvent: Lead
      consent: {property: fb_consent, value: "yes"}
  dataSharing:
    properties:
      - email
      # sent as external_id
      - {property: hs_object_id, as: external_id}
---
apiVersion: convctl/v1
kind: Account
metadata: {name: acme}
spec:
  portalId: 1
  tier: professional
  forms:
    - {id: f-1, name: Demo}
  facebook: {businessId: '1122334455', pixelId: "123456", adAccounts: [a], accessToken: {env: T}}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def test_canonical_order_comments_quotes_and_flow_style_kept() -> None:
    assert format_text(MESSY) == MESSY_FORMATTED


@pytest.mark.parametrize("text", [MESSY, MESSY_FORMATTED, *(p.read_text() for p in SHIPPED)])
def test_idempotent(text: str) -> None:
    once = format_text(text)
    assert format_text(once) == once
    assert once.endswith("\n") and not once.endswith("\n\n")
    assert all(line == line.rstrip() for line in once.splitlines())


def test_key_order_comes_from_the_models() -> None:
    assert shape_of(Metadata).order == ("name", "labels", "renamedFrom")
    spec = shape_of(EventSpec)
    assert spec.order[:3] == ("account", "network", "adAccount")
    assert spec.children["trigger"].children["formSubmission"].order[0] == "formId"
    assert shape_of(AccountSpec).children["facebook"].order[:2] == ("businessId", "pixelId")


def test_shipped_manifests_are_formatted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = run("fmt", "--check", "manifests")
    assert res.exit_code == 0, res.output
    for path in SHIPPED:
        assert format_text(path.read_text()) == path.read_text(), path


@functools.cache
def _canonical_without_comments(path: Path) -> str:
    from reconciler.adapters.fmt import _dump, _load

    return format_text(_dump(_load(_strip_comments(path.read_text()))))


@settings(max_examples=25)
@given(st.sampled_from(SHIPPED), st.randoms(use_true_random=False))
def test_any_key_order_formats_to_the_shipped_file(path: Path, rnd: random.Random) -> None:
    """Shuffle every mapping of a shipped manifest (comments dropped): fmt restores the order."""
    from ruamel.yaml.comments import CommentedMap

    from reconciler.adapters.fmt import _dump, _load

    def shuffle(node: object) -> object:
        if isinstance(node, CommentedMap):
            items = list(node.items())
            rnd.shuffle(items)
            out = CommentedMap((k, shuffle(v)) for k, v in items)
            out.fa._flow_style = node.fa.flow_style()
            return out
        if isinstance(node, list):
            for i, item in enumerate(node):
                node[i] = shuffle(item)
        return node

    docs = _load(_strip_comments(path.read_text()))
    shuffled = _dump([shuffle(d) for d in docs])
    assert format_text(shuffled) == _canonical_without_comments(path)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split(" #")[0].rstrip() for line in text.splitlines()
                     if not line.lstrip().startswith("#")) + "\n"


def test_formatting_keeps_manifests_valid(repo: Path) -> None:
    for path in (repo / "manifests").rglob("*.yaml"):
        path.write_text(format_text(path.read_text()))
    _, diags = load([repo / "manifests"])
    assert not diags.has_errors, [d.render() for d in diags]


def test_check_reports_and_writes_nothing(repo: Path) -> None:
    messy = repo / "manifests" / "acme" / "messy.yaml"
    messy.write_text(MESSY)
    res = run("fmt", "--check")
    assert res.exit_code == 1
    assert res.stdout == ""
    assert "would reformat manifests/acme/messy.yaml" in res.stderr
    assert "1 file would be reformatted, 4 unchanged" in res.stderr
    assert messy.read_text() == MESSY


def test_default_rewrites_in_place_and_prints_names(repo: Path) -> None:
    messy = repo / "manifests" / "acme" / "messy.yaml"
    messy.write_text(MESSY)
    messy.chmod(0o640)
    res = run("fmt")
    assert res.exit_code == 0, res.output
    assert res.stdout == "manifests/acme/messy.yaml\n"
    assert messy.read_text() == MESSY_FORMATTED
    assert messy.stat().st_mode & 0o777 == 0o640
    assert not list(messy.parent.glob(".convctl-*"))  # no temp file left
    res = run("fmt")
    assert res.exit_code == 0 and res.stdout == ""
    assert run("fmt", "--check").exit_code == 0


def test_diff_prints_a_unified_diff_and_writes_nothing(repo: Path) -> None:
    messy = repo / "manifests" / "acme" / "messy.yaml"
    messy.write_text(MESSY)
    res = run("fmt", "--diff", str(messy.relative_to(repo)))
    assert res.exit_code == 0
    assert res.stdout.startswith("--- a/manifests/acme/messy.yaml\n+++ b/manifests/acme/messy.yaml")
    assert "+apiVersion: convctl/v1" in res.stdout
    assert messy.read_text() == MESSY
    assert run("fmt", "--diff", "--check", "manifests").exit_code == 1


def test_broken_file_is_reported_and_left_untouched(repo: Path) -> None:
    broken = repo / "manifests" / "acme" / "broken.yaml"
    text = "apiVersion: convctl/v1\nkind: [unclosed\nmetadata: {name: x}\n"
    broken.write_text(text)
    messy = repo / "manifests" / "globex" / "messy.yaml"
    messy.write_text(MESSY)
    res = run("fmt")
    assert res.exit_code == 1
    line = next(ln for ln in res.stderr.splitlines() if "broken.yaml" in ln)
    assert line.startswith("manifests/acme/broken.yaml:3:")
    assert "error[E002]: YAML syntax error" in line
    assert broken.read_text() == text
    assert messy.read_text() == MESSY_FORMATTED  # the other files are still formatted


def test_duplicate_key_and_missing_path(repo: Path) -> None:
    dup = repo / "manifests" / "dup.yaml"
    dup.write_text("kind: Account\nkind: Account\n")
    res = run("fmt", "--check", "manifests/dup.yaml", "nope.yaml")
    assert res.exit_code == 1
    assert "manifests/dup.yaml:2:1: error[E003]" in res.stderr
    assert "nope.yaml: error[E001]: no such file or folder" in res.stderr


def test_comment_only_and_empty_files_are_left_alone(repo: Path) -> None:
    (repo / "manifests" / "notes.yaml").write_text("# nothing here yet\n")
    (repo / "manifests" / "empty.yaml").write_text("")
    assert run("fmt", "--check").exit_code == 0


def test_block_scalars_keep_their_content() -> None:
    text = "kind: Account\nmetadata:\n  name: x\n  labels:\n    note: |\n      a   \n      # b\n"
    out = format_text(text)
    assert "      a   \n      # b\n" in out
    assert format_text(out) == out


def test_importing_the_command_does_not_load_ruamel() -> None:
    code = ("import sys, reconciler.cli.fmt, reconciler.cli.import_; "
            "print(any(m.startswith('ruamel') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
