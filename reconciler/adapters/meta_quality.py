"""Reading Meta's own match score: the Dataset Quality API (``GET /{version}/dataset_quality``).

One request per pixel (Meta's "dataset"): ``dataset_id`` and ``fields`` in the query (``FIELDS``:
per web event its name, Event Match Quality with the composite score out of 10, the match-key
feedback and the diagnostics, and the event coverage), the token in an ``Authorization:
Bearer`` header so no URL carries it. The answer (``{"web": [...]}``, one entry per event
name) becomes ``WebEventQuality`` values; absent numbers stay None, never 0. Any refusal
(a Graph error envelope: 190 token, 10/200 permission, 100 bad request...), a transport error
or an unexpected body raises ``QualityUnavailable`` with one line naming the pixel and Meta's
code and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from reconciler.core.backoff import parse_graph_error
from reconciler.errors import PermanentError

FIELDS = ("web{event_name,event_match_quality{composite_score,match_key_feedback{identifier,"
          "coverage{percentage}},diagnostics{name,description,solution,percentage}},"
          "event_coverage{percentage,goal_percentage}}")


class QualityUnavailable(PermanentError):
    """Meta's Dataset Quality API could not be read for a pixel (one line, with the code)."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    name: str
    description: str
    solution: str
    percentage: float | None


@dataclass(frozen=True, slots=True)
class WebEventQuality:
    """Meta's figures for one web event name of a pixel."""

    event_name: str
    composite_score: float | None  # Event Match Quality, out of 10
    match_keys: Mapping[str, float | None] = field(default_factory=dict)  # identifier -> %
    diagnostics: tuple[Diagnostic, ...] = ()
    event_coverage: float | None = None  # % of browser events also sent by the server

    def to_json(self) -> dict[str, Any]:
        return {"eventName": self.event_name, "compositeScore": self.composite_score,
                "matchKeys": dict(self.match_keys), "eventCoverage": self.event_coverage,
                "diagnostics": [{"name": d.name, "description": d.description,
                                 "solution": d.solution, "percentage": d.percentage}
                                for d in self.diagnostics]}


class DatasetQualityClient:
    def __init__(self, base_url: str, api_version: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/{api_version}/dataset_quality"
        self._client = httpx.Client(transport=transport, timeout=httpx.Timeout(timeout),
                                    headers={"user-agent": "convctl"})

    def fetch(self, pixel_id: str, token: str) -> list[WebEventQuality]:
        try:
            response = self._client.get(self.url, params={"dataset_id": pixel_id,
                                                          "fields": FIELDS},
                                        headers={"authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise QualityUnavailable(f"pixel {pixel_id}: Meta's Dataset Quality API could not "
                                     f"be reached ({type(exc).__name__})") from None
        error = parse_graph_error(response.content)
        if error is not None or response.status_code != 200:
            what = (f"code {error.code}" + (f"/{error.subcode}" if error.subcode else "")
                    + f": {error.message}") if error else "no Graph error in the answer"
            raise QualityUnavailable(f"pixel {pixel_id}: Meta refused the Dataset Quality "
                                     f"request (HTTP {response.status_code}, {what})")
        try:
            web = orjson.loads(response.content)["web"]
            return [_event(item) for item in web]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise QualityUnavailable(f"pixel {pixel_id}: Meta's Dataset Quality answer has an "
                                     "unexpected shape (no web events)") from None

    def close(self) -> None:
        self._client.close()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _percentage(value: Any) -> float | None:
    return _number(value.get("percentage")) if isinstance(value, Mapping) else _number(value)


def _event(item: Mapping[str, Any]) -> WebEventQuality:
    emq = item.get("event_match_quality") or {}
    keys = {str(k.get("identifier")): _percentage(k.get("coverage"))
            for k in emq.get("match_key_feedback") or () if isinstance(k, Mapping)}
    diagnostics = tuple(Diagnostic(str(d.get("name", "")), str(d.get("description", "")),
                                   str(d.get("solution", "")), _number(d.get("percentage")))
                        for d in emq.get("diagnostics") or () if isinstance(d, Mapping))
    return WebEventQuality(str(item["event_name"]), _number(emq.get("composite_score")), keys,
                           diagnostics, _percentage(item.get("event_coverage")))
