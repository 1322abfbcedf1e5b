"""Hostile and careless manifests (issue 10, items 3-8 and 12): each is one positioned error, or
(empty documents) nothing at all. The one-mistake-per-file cases live in ``tests/data/broken``;
what needs a property, a generated value or the CLI is here.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.adapters.manifests import load
from reconciler.adapters.yamlparse import parse_documents
from reconciler.cli.main import cli
from reconciler.diagnostics import Diagnostics

BROKEN = Path(__file__).parent / "data" / "broken"
ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = (BROKEN / "e309-infinite-value.yaml").read_text().split("---\n")[0]
_TMP = Path(tempfile.mkdtemp(prefix="convctl-hardening-"))


def _load_text(text: str) -> tuple[list[str], list[str]]:
    """(account names loaded, rendered diagnostics) for one file holding ``text``."""
    path = _TMP / "case.yaml"
    path.write_text(text, encoding="utf-8")
    manifests, diags = load([path])
    return [a.model.name for a in manifests.accounts], [d.render() for d in diags]


# --- item 8: empty documents are skipped ------------------------------------------------------

def test_empty_documents_are_skipped_as_kubectl_does() -> None:
    for text in (f"---\n{ACCOUNT}---\n", f"---\n---\n{ACCOUNT}", f"{ACCOUNT}---\n# generated\n\n",
                 f"---\n...\n---\n{ACCOUNT}", f"{ACCOUNT}--- # nothing here\n---\n"):
        assert _load_text(text) == (["acme"], []), text


def test_a_document_that_says_null_is_still_not_a_manifest() -> None:
    names, diags = _load_text(f"{ACCOUNT}---\n~\n")
    assert names == ["acme"] and len(diags) == 1 and "error[E008]" in diags[0]


# --- item 3: numbers are plain decimal --------------------------------------------------------

def test_yaml_1_1_numbers_are_refused_saying_what_they_would_mean() -> None:
    cases = {"04412345": "octal number: YAML 1.1 reads it as 1184997, YAML 1.2 as 4412345",
             "1:20": "base-60 number: YAML 1.1 reads it as 80, YAML 1.2 as text",
             "0b101": "binary number", "4_412_345": "'_' separators",
             "0x4353B9": "hexadecimal number (4412345)"}
    for text, why in cases.items():
        names, diags = _load_text(ACCOUNT.replace("portalId: 4412345", f"portalId: {text}"))
        assert names == [] and len(diags) == 1, diags
        assert diags[0].startswith(f"{_TMP / 'case.yaml'}:8:13: error[E011]: '{text}' is ")
        assert why in diags[0] and "quote the value if it is text" in diags[0]


def test_decimal_numbers_and_quoted_look_alikes_are_fine() -> None:
    text = ACCOUNT.replace("portalId: 4412345", "portalId: +4412345").replace(
        "metadata:\n  name: acme", 'metadata:\n  name: acme\n  labels: {build: "04412345", '
        "at: '1:20', size: 1_0x}")
    assert _load_text(text) == (["acme"], [])


def test_keys_are_the_text_as_written() -> None:
    diags = Diagnostics()
    (doc,) = parse_documents("{no: a, yes: b, on: c, 01: d, ~: e, 2024-01-01: f, =: g}\n", "x",
                             diags)
    assert list(diags) == []
    assert list(doc.data) == ["no", "yes", "on", "01", "~", "2024-01-01", "="]


def test_equals_and_double_angle_values_are_text_not_yaml_1_1_types() -> None:
    diags = Diagnostics()
    (doc,) = parse_documents("a: =\nb: <<\n", "x", diags)
    assert list(diags) == [] and doc.data == {"a": "=", "b": "<<"}
    parse_documents("<<: {a: 1}\n", "x", diags)
    assert [d.code for d in diags] == ["E004"]  # a merge key is still refused


def test_unquoted_yes_for_a_text_field_says_to_quote_it() -> None:
    _, diags = load([BROKEN / "e103-unquoted-consent-yes.yaml"])
    (d,) = diags
    assert d.code == "E103" and (d.location.line, d.location.col) == (32, 46)  # type: ignore
    assert 'quote the value, e.g. "yes"' in d.message


def test_validate_exits_1_on_a_yaml_1_1_number() -> None:
    result = CliRunner().invoke(cli, ["validate", str(BROKEN / "e011-octal-portal-id.yaml")])
    assert result.exit_code == 1 and "error[E011]" in result.output
    assert "Traceback" not in result.output


# --- item 6: names and ids are ASCII, matched whole -------------------------------------------

_HOSTILE = st.sampled_from(["\n", "\r", "\t", " ", "\uff11", "\u0661", "\u202e", "\u00e9", "K",
                            "_", ".", "\u0130", "\u212a", "\x85"])
_NAMEISH = st.text(st.sampled_from("az09-") | _HOSTILE, min_size=1, max_size=70)
_DIGITISH = st.text(st.sampled_from("0123456789") | _HOSTILE, min_size=1, max_size=22)


def _account_with(name: str, pixel: str, ad_account: str) -> str:
    return (ACCOUNT.replace("name: acme", f"name: {json.dumps(name)}")
            .replace('pixelId: "123456789012345"', f"pixelId: {json.dumps(pixel)}")
            .replace("adAccounts: [act_1234567890]", f"adAccounts: [{json.dumps(ad_account)}]"))


@given(_NAMEISH, _DIGITISH, _DIGITISH)
@example("demo\n", "123456789012345", "1234567890")
@example("demo", "12345678901234\uff15", "1\n")
def test_accepted_names_and_ids_are_ascii_and_round_trip(name: str, pixel: str, ad: str) -> None:
    names, diags = _load_text(_account_with(name, pixel, f"act_{ad}"))
    codes = {d.split("error[")[1][:4] for d in diags if "error[" in d}
    if "E106" not in codes and names:
        assert names == [name] and name.isascii() and name.isprintable() and "\n" not in name
    if "E111" not in codes and names:
        assert pixel.isascii() and pixel.isdigit() and 15 <= len(pixel) <= 16
    if "E112" not in codes and names:
        assert ad.isascii() and ad.isdigit()


# --- item 7: integers and amounts are bounded -------------------------------------------------

def test_largest_portal_id_is_accepted_and_one_more_is_refused() -> None:
    ok = ACCOUNT.replace("portalId: 4412345", f"portalId: {2**53 - 1}")
    assert _load_text(ok) == (["acme"], [])
    names, diags = _load_text(ACCOUNT.replace("portalId: 4412345", f"portalId: {2**53}"))
    assert names == [] and len(diags) == 1 and ":8:13: error[E103]" in diags[0]


# --- items 4 and 12: token-shaped references and labels are refused, never echoed -------------

SECRETS = {"e104-meta-token-as-env-name.yaml": "EAAGm0PX4ZCpsBAKZAZBtop012",
           "e104-meta-token-as-file.yaml": "EAAGm0PX4ZCpsBAKZAZBtop012",
           "e104-cvt-token-in-label.yaml": "cvt_Xq3vK9mL2pR8sT4wY7zA1bC5dE6fG0hJ",
           "e104-meta-token-in-label.yaml": "EAAGm0PX4ZCpsBAKZAZBtop012",
           "e104-random-secret-in-label.yaml": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def test_token_shaped_values_are_refused_and_never_echoed() -> None:
    runner = CliRunner()
    for name, secret in SECRETS.items():
        assert secret in (BROKEN / name).read_text()
        for fmt in ("text", "json"):
            result = runner.invoke(cli, ["validate", str(BROKEN / name), "--format", fmt])
            assert result.exit_code == 1 and "E104" in result.output, name
            assert secret[:12] not in result.output, name


def test_a_token_pasted_as_a_key_or_a_name_is_not_echoed() -> None:
    token = SECRETS["e104-meta-token-as-env-name.yaml"]
    for text in (ACCOUNT.replace("  tier:", f"  {token}: x\n  tier:"),
                 ACCOUNT.replace("name: acme", f"name: {token}"),
                 ACCOUNT.replace("  tier:", f"  tier: professional\n  {token}: x\n  tier:")):
        _, diags = _load_text(text)
        assert len(diags) == 1 and token[:12] not in diags[0], diags


# --- item 5: file references stay in the secrets folder ---------------------------------------

def test_validate_takes_the_secrets_folder_from_the_option_or_the_environment(
        tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(ACCOUNT.replace("{env: ACME_META_TOKEN}", "{file: /srv/keys/acme}"))
    runner = CliRunner()
    refused = runner.invoke(cli, ["validate", str(path)], env={"CONVCTL_SECRETS_DIR": None})
    assert refused.exit_code == 1
    assert "error[E114]: accessToken.file '/srv/keys/acme': the path is outside the secrets " \
           "folder; the agent reads secret files only from its secrets folder /run/secrets" \
           in refused.output
    assert runner.invoke(cli, ["validate", str(path), "--secrets-dir", "/srv/keys"]).exit_code == 0
    assert runner.invoke(cli, ["validate", str(path)],
                         env={"CONVCTL_SECRETS_DIR": "/srv/keys/"}).exit_code == 0
    near_miss = runner.invoke(cli, ["validate", str(path), "--secrets-dir", "/srv/key"])
    assert near_miss.exit_code == 1 and "E114" in near_miss.output


# --- every hostile manifest: apply exits 1 before any write -----------------------------------

def test_apply_refuses_each_hostile_edit_and_leaves_the_state_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVCTL_SECRETS_DIR", raising=False)
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    runner = CliRunner()
    assert runner.invoke(cli, ["apply", "--auto-approve"]).exit_code == 0
    before = _live_state(tmp_path)
    account = tmp_path / "manifests" / "acme" / "account.yaml"
    shipped = account.read_text()
    edits = {"portalId: 4412345": ["portalId: 99999999999999999999999", "portalId: 04412345",
                                   "portalId: 1:20"],
             "name: acme": ['name: "acme\\n"'],
             "{env: ACME_META_TOKEN}": ["{env: EAAGm0PX4ZCpsBAKZAZBtop012}",
                                        "{file: ../../../../etc/hostname}"]}
    for old, news in edits.items():
        for new in news:
            account.write_text(shipped.replace(old, new, 1))
            result = runner.invoke(cli, ["apply", "--auto-approve"])
            assert result.exit_code == 1 and "error[E" in result.output, (new, result.output)
            assert "Traceback" not in result.output and "EAAGm0PX4ZCp" not in result.output
            assert _live_state(tmp_path) == before


def _live_state(root: Path) -> tuple[list[object], list[object]]:
    from reconciler.adapters.state import open_provider

    provider = open_provider(f"sqlite:///{root / 'state.db'}")
    try:
        return ([a.model_dump() for a in provider.list_accounts()],
                [e.model_dump() for e in provider.list_events()])
    finally:
        provider.close()


# --- item 6 beyond manifests: str.isdigit() is not "ASCII digits" -----------------------------

def test_a_graph_error_with_non_ascii_digits_is_parsed_not_raised() -> None:
    from reconciler.core.backoff import parse_graph_error

    error = parse_graph_error({"error": {"code": "\u00b2", "error_subcode": "\u0661",
                                         "message": "m"}})
    assert error is not None and error.code is None and error.subcode is None
    error = parse_graph_error({"error": {"code": "190", "message": "m"}})
    assert error is not None and error.code == 190


def test_messages_escape_what_they_echo_and_hide_what_looks_like_a_token() -> None:
    event = (BROKEN / "e309-infinite-value.yaml").read_text().split("---\n")[1].replace(
        "      value: {amount: .inf, currency: EUR}\n", "")
    token = SECRETS["e104-meta-token-as-env-name.yaml"]
    _, diags = _load_text(event.replace("account: acme", f"account: {token}"))
    assert len(diags) == 1 and "error[E201]" in diags[0] and token[:12] not in diags[0]
    _, diags = _load_text(event.replace("account: acme", 'account: "acme\\n\\u202e"'))
    assert len(diags) == 1 and "account 'acme\\n\\u202e' is not declared" in diags[0]
