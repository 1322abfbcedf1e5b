"""A loopback fake of HubSpot's CRM contacts batch read (hubspot-contract.md).

``POST /crm/v3/objects/contacts/batch/read`` with ``Authorization: Bearer TOKEN`` and
``{"properties": [...], "inputs": [{"id": ...}, ...]}`` (at most 100 inputs): 200 with the found
contacts (requested properties only; unset ones null), 207 with an ``errors`` entry when some ids
are unknown, 400 for a malformed request or more than 100 ids, 401 for a wrong token, and
``rate_limit_next(n, retry_after)`` answers 429 ``RATE_LIMIT`` n times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.loopback import Loopback

PATH = "/crm/v3/objects/contacts/batch/read"


@dataclass
class FakeHubSpotCrm(Loopback):
    token: str = "hs-token"
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rate_limited: list[float | None] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def rate_limit_next(self, times: int, retry_after: float | None = None) -> None:
        self.rate_limited.extend([retry_after] * times)

    def handle(self, path: str, auth: str, body: bytes) -> tuple[int, dict[str, Any],
                                                                   dict[str, str]]:
        if path != PATH:
            return 404, {"status": "error", "message": "not found"}, {}
        if auth != f"Bearer {self.token}":
            return 401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                         "message": "Authentication credentials not found."}, {}
        with self._mutex:
            if self.rate_limited:
                after = self.rate_limited.pop(0)
                headers = {"Retry-After": f"{after:g}"} if after is not None else {}
                return 429, {"status": "error", "errorType": "RATE_LIMIT",
                             "message": "You have reached your ten_secondly_rolling limit.",
                             "policyName": "TEN_SECONDLY_ROLLING"}, headers
        try:
            request = json.loads(body)
            props = [str(p) for p in request["properties"]]
            ids = [str(item["id"]) for item in request["inputs"]]
        except (ValueError, KeyError, TypeError):
            return 400, {"status": "error", "category": "VALIDATION_ERROR",
                         "message": "Invalid input JSON"}, {}
        if len(ids) > 100:
            return 400, {"status": "error", "category": "VALIDATION_ERROR",
                         "message": "Batch size limit is 100"}, {}
        with self._mutex:
            self.requests.append({"properties": props, "ids": ids})
        return self._answer(ids, props)

    def _answer(self, ids: list[str], props: list[str]) -> tuple[int, dict[str, Any],
                                                                 dict[str, str]]:
        results = [{"id": cid, "properties": {"hs_object_id": cid, **{
                        p: self.contacts[cid].get(p) for p in props}},
                    "archived": False} for cid in ids if cid in self.contacts]
        missing = [cid for cid in ids if cid not in self.contacts]
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            answer["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                                 "message": "Could not get some CONTACT objects",
                                 "context": {"ids": missing}}]
            return 207, answer, {}
        return 200, answer, {}


def _handler(fake: FakeHubSpotCrm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, answer, headers = fake.handle(self.path, self.headers.get(
                "authorization", ""), body)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
