"""The log handler of serve and agent run: every line scrubbed, tracebacks without foreign
messages, the request id on each line, text and JSON formats."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from reconciler.cli.logs import JsonFormatter, ScrubFilter, TextFormatter
from reconciler.errors import StateError
from reconciler.server.access import REQUEST_ID


def _emit(formatter: logging.Formatter, message: str, *args: object,
          exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.logs")
    logger.handlers, logger.propagate = [handler], False
    try:
        if exc is None:
            logger.warning(message, *args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(message, *args)
    finally:
        logger.handlers = []
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_tokens_and_contact_data_are_masked_in_messages_and_tracebacks(
        formatter: logging.Formatter) -> None:
    text = _emit(formatter, "sent %s to %s", "cvt_" + "a" * 32, "jane@example.com",
                 exc=ValueError("bad value 'jane@example.com' / Jane Roe"))
    for leaked in ("cvt_aaaa", "jane@example.com", "Jane Roe"):
        assert leaked not in text
    assert "ValueError (message not logged" in text and "test_logs.py" in text
    ours = _emit(formatter, "failed", exc=StateError("state file x.db is locked"))
    assert "StateError: state file x.db is locked" in ours


def test_lines_carry_the_request_id() -> None:
    token = REQUEST_ID.set("req-7")
    try:
        text = _emit(TextFormatter(), "inside")
        data = orjson.loads(_emit(JsonFormatter(), "inside"))
    finally:
        REQUEST_ID.reset(token)
    assert " [req-7] inside" in text and data["request_id"] == "req-7"
    assert " [-] outside" in _emit(TextFormatter(), "outside")
    assert "request_id" not in orjson.loads(_emit(JsonFormatter(), "outside"))
