"""The JSONL fast path (``crm._fast_line``) against the pydantic models it short-cuts: for any
line, ``parse_jsonl_line`` gives the same value, or the same error message, as the models alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler.core import crm
from reconciler.core.crm import CrmParseError, parse_jsonl_line


def model_path(line: bytes) -> Any:
    """What ``parse_jsonl_line`` did before the fast path: the models only."""
    data = crm.load_json(line)
    if not isinstance(data, dict):
        raise CrmParseError("a line must be a JSON object")
    kind = data.get("type")
    if kind not in ("contact", "lifecycleStageChange", "formSubmission"):
        raise CrmParseError(
            "field 'type' must be one of contact, lifecycleStageChange, formSubmission")
    try:
        parsed = crm._LINE.validate_python(data)
    except crm.ValidationError as exc:
        raise CrmParseError(f"invalid {kind} line: {crm.describe_error(exc)}") from None
    return crm._from_line(parsed)


def outcome(parse: Any, line: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(line)
    except CrmParseError as exc:
        return "error", str(exc)


# Values of every JSON type, biased towards the ones each field accepts.
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False, width=32),
    st.text(max_size=6), st.sampled_from(["", "4412345", "true", "1", "c-1", " x "]))


@st.composite
def times(draw: st.DrawFn) -> Any:
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    minutes = draw(st.integers(-24 * 60 + 1, 24 * 60 - 1))
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    text = aware.isoformat(timespec=draw(st.sampled_from(
        ["seconds", "milliseconds", "microseconds", "minutes"])))
    style = draw(st.integers(0, 12))
    if style in (1, 7, 8):
        text = text.replace("+00:00", "Z")
    elif style == 2:
        text = text.replace("+00:00", "z")
    elif style == 3:
        text = text.replace("T", " ")
    elif style == 4:
        text = text[:-3] + text[-2:]  # +HHMM
    elif style == 5:
        text = text[:19]  # naive
    elif style == 6:
        text = text.replace(".", ".1234567"[: draw(st.integers(1, 8))] + "0", 1)
    return draw(_field(st.just(text)))


@st.composite
def _field(draw: st.DrawFn, good: st.SearchStrategy[Any]) -> Any:
    """Mostly a good value, one time in five any JSON scalar."""
    return draw(_scalars) if draw(st.integers(0, 4)) == 0 else draw(good)


_ids = _field(st.sampled_from(["c1", "501", "sub-9", "x" * 40, "Zoë"]))
_props = st.one_of(
    st.dictionaries(st.sampled_from(["email", "phone", "fb_consent", "country"]),
                    st.one_of(st.text(max_size=8), st.none(), st.text(max_size=8)),
                    max_size=4),
    st.dictionaries(st.sampled_from(["email", "x"]), _scalars, max_size=2))


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["contact", "lifecycleStageChange", "formSubmission"] * 3
                                + ["meeting"]))
    line: dict[str, Any] = {"type": kind,
                            "portalId": draw(_field(st.integers(1, 10**9)))}
    if kind == "contact":
        optional = {"properties": _field(_props), "metaLeadId": _field(st.just("123456789012345")),
                    "adInteraction": _field(st.booleans()), "fbc": _ids, "fbp": _ids}
        line["contactId"] = draw(_ids)
    elif kind == "lifecycleStageChange":
        optional = {}
        line.update(contactId=draw(_ids), stage=draw(_ids), occurredAt=draw(times()))
    else:
        optional = {"pageUrl": _ids, "ipAddress": _ids, "userAgent": _ids}
        line.update(formId=draw(_ids), submissionId=draw(_ids), contactId=draw(_ids),
                    submittedAt=draw(times()))
    for key, strategy in optional.items():
        if draw(st.booleans()):
            line[key] = draw(strategy)
    if draw(st.integers(0, 9)) == 0 and len(line) > 1:  # a required field missing
        del line[draw(st.sampled_from(sorted(line)))]
    if draw(st.integers(0, 9)) == 0:
        line["extra"] = draw(_scalars)
    return line


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines())
def test_fast_path_gives_the_models_answer(line: dict[str, Any]) -> None:
    raw = orjson.dumps(line)
    assert outcome(parse_jsonl_line, raw) == outcome(model_path, raw)
    fast = crm._fast_line(orjson.loads(raw))
    event("fast path" if fast is not None else "models")
    if fast is not None:  # taken: the models accept the line and agree
        assert outcome(model_path, raw) == ("ok", fast)


def test_the_fast_path_takes_the_usual_lines() -> None:
    at = "2026-11-28T10:00:00Z"
    usual = [
        {"type": "contact", "portalId": 1, "contactId": "c", "properties": {"email": "a@b.c",
         "x": None}, "metaLeadId": "123456789012345", "adInteraction": True, "fbc": "fb.1"},
        {"type": "lifecycleStageChange", "portalId": 1, "contactId": "c", "stage": "customer",
         "occurredAt": at},
        {"type": "formSubmission", "portalId": 1, "formId": "f", "submissionId": "s",
         "contactId": "c", "submittedAt": "2026-11-28T11:00:00.250+01:00",
         "pageUrl": "https://x.example/", "ipAddress": "203.0.113.7", "userAgent": "UA"},
    ]
    for line in usual:
        fast = crm._fast_line(line)
        assert fast is not None and fast == model_path(orjson.dumps(line))
    stage = crm._fast_line(usual[1])
    assert isinstance(stage, crm.StageChange)
    assert stage.occurred_at == datetime(2026, 11, 28, 10, tzinfo=UTC)


@pytest.mark.parametrize("line", [
    b'{"type":"contact","portalId":0,"contactId":"c"}',
    b'{"type":"contact","portalId":1,"contactId":""}',
    b'{"type":"contact","portalId":1,"contactId":"c","adInteraction":"maybe"}',
    b'{"type":"lifecycleStageChange","portalId":1,"contactId":"c","stage":"s",'
    b'"occurredAt":"2026-11-28T10:00:00"}',
    b'{"type":"formSubmission","portalId":1,"formId":"f","submissionId":"s","contactId":"c",'
    b'"submittedAt":"2026-11-28T10:00:00Z","pageUrl":3}',
    b'{"type":"formSubmission","portalId":1,"formId":"f","submissionId":"s","contactId":"c",'
    b'"submittedAt":"2026-11-28T10:00:00Z","other":1}',
])
def test_bad_lines_keep_the_models_precise_message(line: bytes) -> None:
    kind, message = outcome(parse_jsonl_line, line)
    assert kind == "error" and (kind, message) == outcome(model_path, line)
    assert message.startswith("invalid ")
