"""``convctl import``: live state -> manifests that validate and load back to the live specs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.adapters.export import render_files, schema_link, write_files
from reconciler.adapters.fmt import format_text
from reconciler.adapters.manifests import load
from reconciler.cli.main import cli
from reconciler.core.export import export_documents
from reconciler.core.live import EventWrite, LiveAccount, LiveEvent
from reconciler.core.models import (
    AccountSpec,
    Consent,
    CustomStage,
    DataSharing,
    EventSpec,
    Facebook,
    Form,
    FormSubmission,
    LifecycleStageChange,
    Money,
    PropertyMapping,
    SecretRef,
    Trigger,
)
from reconciler.core.vocabulary import META_USER_KEYS, PROPERTY_KEYS, STANDARD_META_EVENTS
from reconciler.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --- strategies: valid live states ------------------------------------------------------------

TRICKY = ["yes", "no", "on", "null", "~", "true", "1e3", "0x1F", "012", "2024-01-01", "#tag",
          "a: b", "- x", "[x]", "{x}", "' q", '"q', "*alias", "&a", "!tag", "%d", "@at", "`b",
          "x #y", " lead", "trail ", "multi\nline", "tab\there", "ünï", "日本", "emoji 🎉"]
text = st.one_of(st.sampled_from(TRICKY), st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12))
names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
labels = st.dictionaries(st.one_of(st.sampled_from(TRICKY), st.from_regex(
    r"[a-z][a-z0-9_./-]{0,8}", fullmatch=True)), text, max_size=3)
digits = st.integers(min_value=0, max_value=9).map(str)
# file: references name a file in the secrets folder (/run/secrets by default).
secret_files = st.from_regex(r"/run/secrets/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,19}", fullmatch=True)


def _ids(pattern: str, max_size: int, min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(st.from_regex(pattern, fullmatch=True), min_size=min_size, max_size=max_size,
                    unique=True)


@st.composite
def account_specs(draw: st.DrawFn, portal_id: int) -> AccountSpec:
    stage_ids = draw(_ids(r"[1-9][0-9]{0,9}", 3))
    form_ids = draw(_ids(r"[0-9a-f]{8}-[0-9a-f]{4}", 3))
    token = draw(st.one_of(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True).map(
        lambda e: SecretRef(env=e)), secret_files.map(lambda f: SecretRef(file=f))))
    facebook = Facebook(
        business_id=draw(st.from_regex(r"[0-9]{5,20}", fullmatch=True)),
        pixel_id=draw(st.from_regex(r"[0-9]{15,16}", fullmatch=True)),
        ad_accounts=draw(_ids(r"act_[0-9]{1,12}", 3, min_size=1)),
        access_token=token,
        lead_id_property=draw(st.one_of(st.just("meta_lead_id"), text)),
        ad_interaction_property=draw(st.one_of(st.just("meta_ad_interaction"), text)),
    )
    return AccountSpec(
        portal_id=portal_id,
        tier=draw(st.sampled_from(["professional", "enterprise"])),
        lead_sync=draw(st.booleans()),
        sync_web_conversions=draw(st.booleans()),
        default_country_code=draw(st.one_of(st.none(), st.from_regex(r"[1-9][0-9]{0,2}",
                                                                     fullmatch=True))),
        custom_lifecycle_stages=[CustomStage(id=i, label=draw(text)) for i in stage_ids],
        forms=[Form(id=i, name=draw(text)) for i in form_ids],
        facebook=facebook,
    )


@st.composite
def triggers(draw: st.DrawFn, spec: AccountSpec) -> Trigger | None:
    kinds = (["form"] if spec.forms else []) + (["lifecycle"] if spec.lead_sync else [])
    if not kinds:
        return None
    if draw(st.sampled_from(kinds)) == "lifecycle":
        stages = ["subscriber", "lead", "customer", *(s.id for s in spec.custom_lifecycle_stages)]
        return Trigger(lifecycle_stage_change=LifecycleStageChange(
            stages=draw(st.lists(st.sampled_from(stages), min_size=1, max_size=4, unique=True)),
            contacts=draw(st.sampled_from(["all", "adInteractions"]))))
    event = draw(st.one_of(st.sampled_from(STANDARD_META_EVENTS),
                           st.from_regex(r"custom:[A-Za-z0-9_][A-Za-z0-9_ -]{0,20}",
                                         fullmatch=True)))
    value = draw(st.one_of(st.none(), st.builds(
        Money, amount=st.floats(min_value=0.01, max_value=1e9, allow_nan=False),
        currency=st.sampled_from(["EUR", "USD", "GBP", "JPY"]))))
    return Trigger(form_submission=FormSubmission(
        form_id=draw(st.sampled_from([f.id for f in spec.forms])), facebook_event=event,
        value=value, predictive_lead_score=draw(st.booleans()),
        consent=Consent(property=draw(text.filter(str.strip)),
                        value=draw(text.filter(str.strip)))))


@st.composite
def event_specs(draw: st.DrawFn, account: str, spec: AccountSpec) -> EventSpec | None:
    trigger = draw(triggers(spec))
    if trigger is None:
        return None
    props = draw(st.lists(st.one_of(
        st.sampled_from(sorted(PROPERTY_KEYS)),
        st.builds(PropertyMapping, property=text, as_=st.sampled_from(META_USER_KEYS))),
        max_size=4))
    return EventSpec(account=account,
                     ad_account=draw(st.sampled_from(spec.facebook.ad_accounts)),
                     enabled=draw(st.booleans()), protect=draw(st.booleans()), trigger=trigger,
                     data_sharing=DataSharing(properties=props, ip_address=draw(st.booleans())))


@st.composite
def live_states(draw: st.DrawFn) -> tuple[list[LiveAccount], list[LiveEvent]]:
    accounts: list[LiveAccount] = []
    events: list[LiveEvent] = []
    for n, name in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
        spec = draw(account_specs(portal_id=n + 1))
        accounts.append(LiveAccount(name=name, spec=spec, labels=draw(labels), updated_at=NOW))
        for ev_name in draw(st.lists(names, max_size=4, unique=True)):
            ev_spec = draw(event_specs(name, spec))
            if ev_spec is not None:
                events.append(LiveEvent(id=f"ev-{len(events)}", account=name, name=ev_name,
                                        spec=ev_spec, labels=draw(labels), created_at=NOW,
                                        updated_at=NOW))
    return accounts, events


def _write_and_load(accounts: list[LiveAccount], events: list[LiveEvent], out: Path) -> Any:
    rendered = render_files(export_documents(accounts, events), out, out.parent)
    write_files(rendered, force=True)
    return rendered, load([out])


def _assert_round_trip(accounts: list[LiveAccount], events: list[LiveEvent], out: Path) -> None:
    rendered, (manifests, diags) = _write_and_load(accounts, events, out)
    assert not diags.has_errors, [d.render() for d in diags.errors]
    assert {a.model.name: (a.model.spec, a.model.metadata.labels) for a in manifests.accounts} \
        == {a.name: (a.spec, a.labels) for a in accounts}
    assert {e.model.key: (e.model.spec, e.model.metadata.labels) for e in manifests.events} \
        == {e.key: (e.spec, e.labels) for e in events}
    for text in rendered.values():
        assert format_text(text) == text  # already canonical: `fmt --check` passes


# --- the pure export and the writer -----------------------------------------------------------

@settings(max_examples=40)
@given(live_states())
def test_exported_manifests_validate_and_load_back_to_the_live_specs(
        state: tuple[list[LiveAccount], list[LiveEvent]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _assert_round_trip(*state, Path(tmp) / "manifests")


def _shipped_state() -> tuple[list[LiveAccount], list[LiveEvent]]:
    manifests, diags = load([ROOT / "manifests"])
    assert not diags.has_errors
    accounts = [LiveAccount(name=a.model.name, spec=a.model.spec, labels=a.model.metadata.labels,
                            updated_at=NOW) for a in manifests.accounts]
    events = [LiveEvent(id=f"ev-{i}", account=e.model.spec.account, name=e.model.name,
                        spec=e.model.spec, labels=e.model.metadata.labels, created_at=NOW,
                        updated_at=NOW) for i, e in enumerate(manifests.events)]
    return accounts, events


def test_shipped_state_round_trips(tmp_path: Path) -> None:
    _assert_round_trip(*_shipped_state(), tmp_path / "manifests")


def test_export_layout_order_and_minimal_specs() -> None:
    accounts, events = _shipped_state()
    files = export_documents(list(reversed(accounts)), list(reversed(events)))
    assert list(files) == ["acme/account.yaml", "acme/events.yaml", "globex/account.yaml",
                           "globex/events.yaml"]
    assert [d["metadata"]["name"] for d in files["acme/events.yaml"]] == [
        "demo-booked", "demo-request", "funnel", "newsletter-signup"]
    funnel = files["acme/events.yaml"][2]
    assert funnel == {
        "apiVersion": "convctl/v1", "kind": "ConversionEvent", "metadata": {"name": "funnel"},
        "spec": {"account": "acme", "adAccount": "act_1234567890", "trigger": {
            "lifecycleStageChange": {"stages": ["lead", "marketingqualifiedlead",
                                                "salesqualifiedlead", "customer"]}}}}
    assert export_documents([], []) == {}


def test_written_file_is_canonical_with_schema_line(tmp_path: Path) -> None:
    accounts, events = _shipped_state()
    rendered = render_files(export_documents(accounts, events), tmp_path / "manifests", tmp_path)
    text = rendered[tmp_path / "manifests" / "acme" / "events.yaml"]
    assert text.startswith("# yaml-language-server: $schema=../../schemas/convctl.schema.json\n"
                           "apiVersion: convctl/v1\nkind: ConversionEvent\nmetadata:\n"
                           "  name: demo-booked\n")
    assert text.count("---\n") == 3
    assert text.count("# yaml-language-server") == 4
    assert "      consent: {property: fb_consent, value: \"yes\"}\n" in text


def test_schema_link_is_relative_to_the_written_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    assert schema_link(root / "manifests/acme/account.yaml", root) == \
        "../../schemas/convctl.schema.json"
    assert schema_link(root / "a/b/c/acme/account.yaml", root) == \
        "../../../../schemas/convctl.schema.json"
    assert schema_link(tmp_path / "elsewhere/acme/account.yaml", root) == \
        "../../repo/schemas/convctl.schema.json"


def test_writer_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    accounts, events = _shipped_state()
    rendered = render_files(export_documents(accounts, events), tmp_path, tmp_path)
    existing = tmp_path / "globex" / "events.yaml"
    existing.parent.mkdir()
    existing.write_text("# mine\n")
    with pytest.raises(UsageError, match=r"refusing to overwrite .*globex/events\.yaml"):
        write_files(rendered, force=False)
    assert existing.read_text() == "# mine\n"
    assert not (tmp_path / "acme").exists()
    assert len(write_files(rendered, force=True)) == 4
    assert existing.read_text().startswith("# yaml-language-server")


# --- the command ------------------------------------------------------------------------------

@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A named in-memory state seeded with the shipped manifests; cwd is an empty repo."""
    from reconciler.adapters.state import open_provider

    url = f"memory://import-{request.node.name}"
    provider = open_provider(url)
    accounts, events = _shipped_state()
    for acc in accounts:
        provider.put_account(acc.name, acc.spec, acc.labels, expected_version=None)
    for ev in events:
        provider.create_event(EventWrite(account=ev.account, name=ev.name, spec=ev.spec,
                                         labels=ev.labels, managed_by=None))
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVCTL_STATE", url)
    monkeypatch.setenv("NO_COLOR", "1")
    return url


def test_import_writes_every_account(state: str, tmp_path: Path) -> None:
    res = run("import")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "manifests/acme/account.yaml", "manifests/acme/events.yaml",
        "manifests/globex/account.yaml", "manifests/globex/events.yaml"]
    assert "imported 2 accounts and 7 events into 4 files" in res.stderr
    assert run("validate").exit_code == 0
    assert run("fmt", "--check").exit_code == 0


def test_import_one_account_to_another_folder(state: str, tmp_path: Path) -> None:
    res = run("import", "--account", "globex", "--out", "adopted/crm", "--state", state)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == ["adopted/crm/globex/account.yaml",
                                       "adopted/crm/globex/events.yaml"]
    assert not (tmp_path / "adopted/crm/acme").exists()
    head = (tmp_path / "adopted/crm/globex/account.yaml").read_text().splitlines()[0]
    assert head == "# yaml-language-server: $schema=../../../schemas/convctl.schema.json"
    _, diags = load([tmp_path / "adopted"])
    assert not diags.has_errors


def test_import_refuses_to_overwrite_unless_forced(state: str, tmp_path: Path) -> None:
    assert run("import", "--account", "acme").exit_code == 0
    events = tmp_path / "manifests/acme/events.yaml"
    events.write_text("# edited by hand\n")
    res = run("import", "--account", "acme")
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr == ("error: refusing to overwrite manifests/acme/account.yaml, "
                          "manifests/acme/events.yaml; use --force or another --out\n")
    assert events.read_text() == "# edited by hand\n"
    res = run("import", "--account", "acme", "--force")
    assert res.exit_code == 0
    assert "demo-request" in events.read_text()


def test_import_unknown_account_is_an_error(state: str) -> None:
    res = run("import", "--account", "nope")
    assert res.exit_code == 1
    assert res.stderr == ("error: no such account in the live state: nope "
                          "(known: acme, globex)\n")


def test_import_warns_about_legacy_events(state: str) -> None:
    from reconciler.adapters.state import open_provider

    provider = open_provider(state)
    ev = provider.list_events("acme")[0]
    provider.update_event(ev.id, EventWrite(account=ev.account, name=ev.name, spec=ev.spec,
                                            labels=ev.labels, api="legacy", managed_by=None),
                          expected_version=ev.version)
    res = run("import", "--account", "acme")
    assert res.exit_code == 0
    assert f"warning: event acme/{ev.name} uses the legacy API" in res.stderr


def test_installed_command_refusal_exit_code(tmp_path: Path) -> None:
    (tmp_path / "manifests/acme").mkdir(parents=True)
    env = {"CONVCTL_STATE": f"sqlite:///{tmp_path}/state.db", "PATH": "/usr/bin:/bin"}
    seed = ("from reconciler.adapters.state import open_provider\n"
            "import tests.test_import as t\n"
            "p = open_provider()\n"
            "[p.put_account(a.name, a.spec, a.labels, expected_version=None) "
            "for a in t._shipped_state()[0]]\np.close()\n")
    subprocess.run([sys.executable, "-c", seed], cwd=ROOT, env=env, check=True)
    (tmp_path / "manifests/acme/account.yaml").write_text("x: 1\n")
    convctl = str(Path(sys.executable).parent / "convctl")
    res = subprocess.run([convctl, "import"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert res.returncode == 1
    assert res.stderr.startswith("error: refusing to overwrite manifests/acme/account.yaml")
    assert (tmp_path / "manifests/acme/account.yaml").read_text() == "x: 1\n"


def test_import_after_apply_then_plan_is_empty(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "given")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVCTL_STATE", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("NO_COLOR", "1")
    assert run("apply", "--path", "given", "--auto-approve").exit_code == 0
    assert run("import").exit_code == 0
    res = run("plan", "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert "No changes." in res.output


@settings(max_examples=25)
@given(live_states())
def test_import_then_plan_is_empty(state: tuple[list[LiveAccount], list[LiveEvent]]) -> None:
    """Property (issue 3 item 10): manifests imported from any live state, with the events
    adopted, plan to no changes against that state."""
    from reconciler.adapters.state.memory import MemoryProvider
    from reconciler.core.planner import build_plan
    from reconciler.services.apply import adopt_events

    accounts, events = state
    provider = MemoryProvider()
    for acc in accounts:
        provider.put_account(acc.name, acc.spec, acc.labels, None)
    for ev in events:
        provider.create_event(EventWrite(account=ev.account, name=ev.name, spec=ev.spec,
                                         labels=ev.labels, managed_by=None))
    with tempfile.TemporaryDirectory() as tmp:
        _, (manifests, diags) = _write_and_load(accounts, provider.list_events(),
                                                Path(tmp) / "manifests")
    assert not diags.has_errors
    assert adopt_events(provider, provider.list_events()) == len(events)
    plan = build_plan(manifests, provider.list_accounts(), provider.list_events())
    assert plan.is_empty and not plan.errors, [c.address for c in plan.changes]


# --- issue 10 items 9 and 12: a live state written before the rules ---------------------------

def _old_state(tmp_path: Path, account: str, labels: dict[str, str]) -> str:
    """A SQLite state holding what the write rules now refuse, put there behind their back."""
    import sqlite3

    import orjson

    from reconciler.adapters.state.sqlite import SqliteProvider

    path = tmp_path / "state.db"
    provider = SqliteProvider(path)
    spec = AccountSpec.model_validate({
        "portalId": 1, "tier": "professional",
        "facebook": {"businessId": "1122334455", "pixelId": "123456789012345",
                     "adAccounts": ["act_1"], "accessToken": {"env": "T"}}})
    provider.put_account("acme", spec, {}, None)
    provider.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE accounts SET name = ?, labels = ?",
                   (account, orjson.dumps(labels).decode()))
    return f"sqlite:///{path}"


def test_import_never_writes_outside_the_output_folder(tmp_path: Path) -> None:
    state = _old_state(tmp_path, "../../escaped", {})
    out = tmp_path / "deep" / "out"
    result = CliRunner().invoke(cli, ["import", "--out", str(out), "--state", state])
    assert result.exit_code == 1
    assert "refusing to import" in result.output and "E106" in result.output
    assert not (tmp_path / "escaped").exists() and not out.exists()


def test_import_masks_tokens_in_labels(tmp_path: Path) -> None:
    token = "cvt_" + "Q7-vK_2m" * 4
    state = _old_state(tmp_path, "acme", {"owner": f"ci {token}"})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["import", "--out", str(out), "--state", state])
    assert result.exit_code == 0, result.output
    text = (out / "acme" / "account.yaml").read_text()
    assert token not in text and "***redacted***" in text
