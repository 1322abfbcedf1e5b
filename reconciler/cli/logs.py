"""Logging for the long-running commands (``serve``, ``agent run``): ``--log-format text|json``
and ``--log-level``, one handler on stderr for our lines, uvicorn's and the access log.

Every record goes through ``scrub`` (``server.access``) before it is written, its traceback
too (whose last line keeps the message of our own errors only), so a token or an address that
reached a message is masked; each line carries the request
id of the request it was logged in (``-`` outside requests). httpx stays at WARNING whatever
the level (its INFO lines are request URLs).
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import click

LEVELS = ("debug", "info", "warning", "error")


def log_options(func: Any) -> Any:
    """``--log-format`` and ``--log-level`` (env CONVCTL_LOG_FORMAT, CONVCTL_LOG_LEVEL)."""
    func = click.option("--log-level", type=click.Choice(LEVELS), default="info",
                        show_default=True, envvar="CONVCTL_LOG_LEVEL",
                        help="Least severe level logged [env CONVCTL_LOG_LEVEL].")(func)
    return click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                        show_default=True, envvar="CONVCTL_LOG_FORMAT",
                        help="Log lines as text or as one JSON object per line "
                        "[env CONVCTL_LOG_FORMAT].")(func)


class ScrubFilter(logging.Filter):
    """Masks tokens and contact data in the message and traceback; adds ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        from reconciler.server.access import REQUEST_ID, scrub

        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info:
            record.exc_text = scrub(_traceback(record.exc_info[1]))
            record.exc_info = None
        record.request_id = REQUEST_ID.get() or "-"
        return True


def _traceback(exc: BaseException | None) -> str:
    """The frames of a traceback, and the message only of our own errors (a foreign
    exception's message may quote the data it choked on, e.g. a contact's e-mail)."""
    from reconciler.errors import ConvctlError

    if exc is None:
        return ""
    head = (f"{type(exc).__name__}: {exc}" if isinstance(exc, ConvctlError)
            else f"{type(exc).__name__} (message not logged: it may quote data)")
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"Traceback (most recent call last):\n{frames}{head}"


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (f"{_time(record)} {record.levelname} {record.name} "
                f"[{getattr(record, 'request_id', '-')}] {record.getMessage()}")
        return f"{line}\n{record.exc_text}".rstrip() if record.exc_text else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import orjson

        data: dict[str, Any] = {"time": _time(record), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        request_id, http = getattr(record, "request_id", "-"), getattr(record, "http", None)
        if request_id != "-":
            data["request_id"] = request_id
        if isinstance(http, dict):
            data["http"] = http
        if record.exc_text:
            data["exception"] = record.exc_text
        return orjson.dumps(data, default=str).decode()


def setup_logging(fmt: str = "text", level: str = "info") -> None:
    """One stderr handler on the root logger in ``fmt``, at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
