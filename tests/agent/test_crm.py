"""CRM inputs: JSONL lines, HubSpot webhook arrays and the form-ingest body."""

from __future__ import annotations

import contextlib
import json
from dataclasses import FrozenInstanceError, astuple, replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.crm import (
    Contact,
    CrmParseError,
    DedupKey,
    DropReason,
    FormSubmission,
    Ignored,
    StageChange,
    parse_jsonl_line,
    stage_source_id,
    to_epoch_ms,
)
from reconciler.core.crm_hubspot import contact_from_properties, parse_form_ingest, parse_webhook
from reconciler.errors import PermanentError

AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
AT_MS = 1_795_860_000_000


def test_at_ms_matches() -> None:
    assert int(AT.timestamp() * 1000) == AT_MS


def test_contact_line() -> None:
    line = ('{"type":"contact","portalId":4412345,"contactId":"C1","properties":'
            '{"email":"a@b.c","city":null},"metaLeadId":"1234567890123456",'
            '"adInteraction":true,"fbc":"fb.1.2.x","fbp":"fb.1.3.y"}')
    assert parse_jsonl_line(line) == Contact(4412345, "C1", {"email": "a@b.c"},
                                             "1234567890123456", True, "fb.1.2.x", "fb.1.3.y")


def test_stage_line() -> None:
    line = ('{"type":"lifecycleStageChange","portalId":4412345,"contactId":"C1",'
            '"stage":"customer","occurredAt":"2026-11-28T11:00:00+01:00"}')
    parsed = parse_jsonl_line(line)
    assert isinstance(parsed, StageChange)
    assert parsed.occurred_at == AT and parsed.occurred_at.tzinfo == UTC
    assert parsed.source_id == stage_source_id(4412345, "C1", "customer", AT)


def test_form_line() -> None:
    line = ('{"type":"formSubmission","portalId":4412345,"formId":"F","submissionId":"S",'
            '"contactId":"C1","submittedAt":"2026-11-28T10:00:00Z","pageUrl":"https://x.y/",'
            '"ipAddress":"203.0.113.7","userAgent":"UA"}')
    assert parse_jsonl_line(line) == FormSubmission(4412345, "F", "S", "C1", AT, "https://x.y/",
                                                    "203.0.113.7", "UA")


@pytest.mark.parametrize(("line", "fragment"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"type":"deal"}', "field 'type' must be one of"),
    ('{"portalId":1}', "field 'type' must be one of"),
    ('{"type":"contact","portalId":1}', "contactId: Field required"),
    ('{"type":"contact","portalId":1,"contactId":"C","secret":"sk-123"}',
     "secret: Extra inputs are not permitted"),
    ('{"type":"lifecycleStageChange","portalId":1,"contactId":"C","stage":"lead",'
     '"occurredAt":"2026-11-28T10:00:00"}', "occurredAt"),
    ('{"type":"lifecycleStageChange","portalId":1,"contactId":"C","stage":"lead",'
     '"occurredAt":"yesterday"}', "occurredAt"),
    ('{"type":"formSubmission","portalId":0,"formId":"F","submissionId":"S","contactId":"C",'
     '"submittedAt":"2026-11-28T10:00:00Z"}', "portalId"),
])
def test_bad_lines_are_precise_and_leak_no_values(line: str, fragment: str) -> None:
    with pytest.raises(CrmParseError) as info:
        parse_jsonl_line(line)
    assert fragment in str(info.value)
    assert "sk-123" not in str(info.value) and "yesterday" not in str(info.value)
    assert isinstance(info.value, PermanentError)


def webhook_event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "eventId": 100, "subscriptionId": 7, "portalId": 4412345, "appId": 9,
        "occurredAt": AT_MS, "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
        "objectId": 501, "propertyName": "lifecyclestage", "propertyValue": "customer",
        "changeSource": "CRM", "sourceId": "userId:1", "someNewField": True,
    }
    event.update(overrides)
    return event


def test_webhook_stage_change_and_dedup_key() -> None:
    [record] = parse_webhook(orjson.dumps([webhook_event()]))
    assert record.event == StageChange(4412345, "501", "customer", AT,
                                       stage_source_id(4412345, "501", "customer", AT))
    assert record.key == DedupKey(4412345, 7, 100, 501, AT_MS, "lifecyclestage", "customer")
    assert len(record.key.digest()) == 64


def test_webhook_other_types_are_ignored_with_reason() -> None:
    body = [webhook_event(subscriptionType="contact.creation", propertyName=None,
                          propertyValue=None),
            webhook_event(propertyName="email", propertyValue="a@b.c"),
            webhook_event(propertyValue="")]
    events = [r.event for r in parse_webhook(body)]
    assert all(isinstance(e, Ignored) for e in events)
    assert [e.reason for e in events if isinstance(e, Ignored)] == [
        "unsupported_subscription", "other_property", "empty_stage"]


def test_webhook_same_change_same_source_id_as_jsonl() -> None:
    [record] = parse_webhook([webhook_event()])
    line = parse_jsonl_line(json.dumps({
        "type": "lifecycleStageChange", "portalId": 4412345, "contactId": "501",
        "stage": "customer", "occurredAt": "2026-11-28T10:00:00Z"}))
    assert isinstance(record.event, StageChange) and isinstance(line, StageChange)
    assert record.event.source_id == line.source_id


def test_webhook_dedup_keys_tell_retries_from_changes() -> None:
    a, b, c = parse_webhook([webhook_event(), webhook_event(attemptNumber=1),
                             webhook_event(propertyValue="lead")])
    assert a.key == b.key != c.key


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{}", "JSON array"),
    (b"[", "not valid JSON"),
    (orjson.dumps([webhook_event()] * 101), "at most 100"),
    (orjson.dumps([{"eventId": 1}]), "subscriptionId"),
    (orjson.dumps([webhook_event(occurredAt="later")]), "occurredAt"),
])
def test_malformed_webhooks(body: bytes, fragment: str) -> None:
    with pytest.raises(CrmParseError, match=fragment):
        parse_webhook(body)


def form_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "formId": "F", "portalId": 4412345, "submittedAt": AT_MS,
        "fields": [{"name": "email", "value": "a@b.c"}, {"name": "fb_consent", "value": "yes"}],
        "context": {"hutk": "h", "ipAddress": "203.0.113.7", "pageUri": "https://x.y/demo",
                    "pageName": "Demo"},
        "userAgent": "UA", "contactId": "501", "submissionId": "S-1",
    }
    body.update(overrides)
    return body


def test_form_ingest() -> None:
    parsed = parse_form_ingest(orjson.dumps(form_body()))
    assert parsed.submission == FormSubmission(4412345, "F", "S-1", "501", AT,
                                               "https://x.y/demo", "203.0.113.7", "UA")
    assert parsed.contact == Contact(4412345, "501", {"email": "a@b.c", "fb_consent": "yes"})


def test_form_ingest_without_ids_is_deterministic() -> None:
    body = form_body()
    del body["submissionId"], body["contactId"]
    first = parse_form_ingest(body)
    again = parse_form_ingest(orjson.dumps(body))
    assert first.submission.submission_id == again.submission.submission_id
    assert first.submission.contact_id == f"submission:{first.submission.submission_id}"
    assert first.contact.contact_id == first.submission.contact_id


@pytest.mark.parametrize("body", [
    form_body(submittedAt="now"), form_body(fields=[{"name": "x"}]), form_body(extra=1),
    {"portalId": 1},
])
def test_form_ingest_errors(body: dict[str, object]) -> None:
    with pytest.raises(CrmParseError):
        parse_form_ingest(body)


def test_contact_from_properties_and_merge() -> None:
    c = contact_from_properties(1, "C", {"meta_lead_id": " 1234567890123456 ",
                                         "meta_ad_interaction": "true", "email": None},
                                lead_id_property="meta_lead_id",
                                ad_interaction_property="meta_ad_interaction")
    assert (c.meta_lead_id, c.ad_interaction, "email" in c.properties) == (
        "1234567890123456", True, False)
    merged = c.merged(Contact(1, "C", {"email": "a@b.c"}, fbc="fb.1.2.x"))
    assert merged.properties["email"] == "a@b.c" and merged.fbc == "fb.1.2.x"
    assert merged.meta_lead_id == "1234567890123456"


@given(st.text(max_size=300))
def test_jsonl_parser_never_crashes(line: str) -> None:
    with contextlib.suppress(CrmParseError):
        parse_jsonl_line(line)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20))
def test_webhook_parser_never_crashes(data: object) -> None:
    with contextlib.suppress(CrmParseError):
        parse_webhook(json.dumps(data).encode())


@given(st.datetimes(timezones=st.one_of(st.none(), st.timezones())))
def test_epoch_milliseconds_are_the_floor_of_the_exact_time(moment: datetime) -> None:
    """``to_epoch_ms`` (stage change ids, LinkedIn's times) is the exact count of whole
    milliseconds since 1970, negative times floored too; a naive time is UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    exact = aware - datetime(1970, 1, 1, tzinfo=UTC)
    assert to_epoch_ms(moment) == exact // timedelta(milliseconds=1)


_TEXT = st.text(max_size=12)
_MAYBE = st.none() | _TEXT


@given(st.integers(1, 2**62), _TEXT, _TEXT, _TEXT, st.datetimes(timezones=st.just(UTC)), _MAYBE,
       _MAYBE, _MAYBE, st.sampled_from([(), ("invalid_ip_address",)]))
def test_events_are_frozen_dataclasses_whose_fields_are_what_was_given(
        portal: int, a: str, b: str, c: str, at: datetime, page: str | None, ip: str | None,
        agent: str | None, dropped: tuple[DropReason, ...]) -> None:
    """The written-out ``__init__`` of StageChange and FormSubmission (the agent's hot path)
    gives what the dataclass's would: every field set, by position or name, defaults,
    equality and hash (``dropped`` not compared), frozen, ``replace``."""
    form = FormSubmission(portal, a, b, c, at, page, ip, agent, dropped)
    named = FormSubmission(portal_id=portal, form_id=a, submission_id=b, contact_id=c,
                           submitted_at=at, page_url=page, ip_address=ip, user_agent=agent)
    assert astuple(form) == (portal, a, b, c, at, page, ip, agent, dropped)
    assert form == named and hash(form) == hash(named) and named.dropped == ()
    assert astuple(FormSubmission(portal, a, b, c, at)) == (portal, a, b, c, at, None, None,
                                                            None, ())
    change = StageChange(portal, a, b, at, c)
    assert astuple(change) == (portal, a, b, at, c)
    assert change == StageChange(portal_id=portal, contact_id=a, stage=b, occurred_at=at,
                                 source_id=c)
    assert replace(change, stage="x").stage == "x" and replace(form, form_id="x").form_id == "x"
    with pytest.raises(FrozenInstanceError):
        form.portal_id = 1  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        change.stage = "x"  # type: ignore[misc]


@given(st.integers(1, 2**62), _TEXT, st.dictionaries(_TEXT, _TEXT, max_size=3), _MAYBE,
       st.booleans(), _MAYBE, _MAYBE)
def test_contacts_are_frozen_dataclasses_whose_fields_are_what_was_given(
        portal: int, cid: str, props: dict[str, str], lead: str | None, ad: bool,
        fbc: str | None, fbp: str | None) -> None:
    """Contact's written-out ``__init__``: fields by position or name, a new empty dict of
    properties by default (never shared), equality, frozen."""
    contact = Contact(portal, cid, props, lead, ad, fbc, fbp)
    assert astuple(contact) == (portal, cid, props, lead, ad, fbc, fbp)
    assert contact == Contact(portal_id=portal, contact_id=cid, properties=dict(props),
                              meta_lead_id=lead, ad_interaction=ad, fbc=fbc, fbp=fbp)
    bare, other = Contact(portal, cid), Contact(portal, cid)
    assert astuple(bare) == (portal, cid, {}, None, False, None, None)
    assert bare.properties is not other.properties
    assert contact.merged(Contact(portal, cid, {"k": "v"})).properties == {**props, "k": "v"}
    with pytest.raises(FrozenInstanceError):
        contact.fbc = "x"  # type: ignore[misc]
