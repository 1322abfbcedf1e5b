"""Contact sources: where the agent reads the contact behind a CRM event (hubspot-contract.md).

- ``EmbeddedContacts(store)``: contacts ingested from JSONL or form submissions (the agent
  store's ``contacts`` table), for local use and tests.
- ``HubSpotContacts(base_url, token)``: the CRM API's batch read (``POST
  /crm/v3/objects/contacts/batch/read``, up to 100 ids a request) asking for the standard
  properties, the account's lead-id and ad-interaction properties (R5, R8), the predictive score
  (R13) and whatever the live events need (consent properties, R14; shared properties, R15).
  429 and 5xx are retried after ``Retry-After`` (or a growing pause) through the injected
  ``sleep``, a bounded number of times; 401/403 are permanent. Either failure makes the agent
  hold its inbox processing off with a reason (``services.agent_holds``), not retry in a loop.
- ``LayeredContacts(primary, embedded)``: the primary source, with what the agent received
  itself (a form's fields, a JSONL upsert) laid over it.

Ids a source does not know are simply absent from the answer (matching skips ``no_contact``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Protocol

import httpx
import orjson

from reconciler.core.crm import Contact
from reconciler.core.crm_hubspot import contact_from_properties
from reconciler.core.live import LiveAccount
from reconciler.core.models import Facebook
from reconciler.errors import PermanentError, TransientError

BATCH_READ_PATH: Final = "/crm/v3/objects/contacts/batch/read"
MAX_IDS: Final = 100
STANDARD_PROPERTIES: Final = (
    "email", "phone", "mobilephone", "firstname", "lastname", "city", "state", "zip", "country",
    "date_of_birth", "gender", "hs_predictivecontactscore_v2", "fbc", "fbp",
)


# An account without Meta still reads the contacts' lead-id properties under their defaults.
_NO_META = Facebook.model_validate({"businessId": "00000", "pixelId": "000000000000000",
                                    "adAccounts": [], "accessToken": {"env": "UNUSED"}})


class ContactSource(Protocol):
    def fetch(self, account: LiveAccount, contact_ids: Sequence[str],
              properties: Iterable[str] = ()) -> dict[str, Contact]:
        """The known contacts among ``contact_ids`` (``properties``: extra ones needed)."""
        ...


class StoredContacts(Protocol):
    """Where the agent keeps contacts itself (either agent store backend)."""

    def contacts(self, portal_id: int, contact_ids: Iterable[str]) -> dict[str, Contact]: ...


class EmbeddedContacts:
    def __init__(self, store: StoredContacts) -> None:
        self._store = store

    def fetch(self, account: LiveAccount, contact_ids: Sequence[str],
              properties: Iterable[str] = ()) -> dict[str, Contact]:
        return self._store.contacts(account.spec.portal_id, contact_ids)


class LayeredContacts:
    """``primary`` answers; contacts the agent stored itself are merged over its answer."""

    def __init__(self, primary: ContactSource, embedded: ContactSource) -> None:
        self._primary, self._embedded = primary, embedded

    def fetch(self, account: LiveAccount, contact_ids: Sequence[str],
              properties: Iterable[str] = ()) -> dict[str, Contact]:
        props = list(properties)
        local = self._embedded.fetch(account, contact_ids, props)
        remote_ids = [cid for cid in contact_ids if not cid.startswith("submission:")]
        found = self._primary.fetch(account, remote_ids, props) if remote_ids else {}
        for cid, contact in local.items():
            found[cid] = found[cid].merged(contact) if cid in found else contact
        return found


class HubSpotContacts:
    """The HubSpot CRM contacts API through httpx (``transport`` is the seam for tests)."""

    def __init__(self, base_url: str, token: str, transport: httpx.BaseTransport | None = None,
                 *, timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep,
                 max_tries: int = 5) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), transport=transport,
                                    timeout=httpx.Timeout(timeout),
                                    headers={"authorization": f"Bearer {token}"})
        self._sleep = sleep
        self._max_tries = max_tries

    def close(self) -> None:
        self._client.close()

    def fetch(self, account: LiveAccount, contact_ids: Sequence[str],
              properties: Iterable[str] = ()) -> dict[str, Contact]:
        fb = account.spec.facebook or _NO_META
        props = sorted({*STANDARD_PROPERTIES, fb.lead_id_property, fb.ad_interaction_property,
                        *properties})
        ids = list(dict.fromkeys(contact_ids))
        found: dict[str, Contact] = {}
        for start in range(0, len(ids), MAX_IDS):
            for item in self._batch_read(ids[start:start + MAX_IDS], props):
                cid = str(item.get("id", ""))
                raw = item.get("properties") or {}
                found[cid] = contact_from_properties(
                    account.spec.portal_id, cid,
                    {k: v if v is None else str(v) for k, v in raw.items()},
                    lead_id_property=fb.lead_id_property,
                    ad_interaction_property=fb.ad_interaction_property)
        return found

    def _batch_read(self, ids: list[str], props: list[str]) -> list[dict[str, Any]]:
        body = {"properties": props, "inputs": [{"id": cid} for cid in ids]}
        for attempt in range(1, self._max_tries + 1):
            response = self._post(body)
            if response.status_code in (200, 207):
                results = orjson.loads(response.content).get("results", [])
                return [r for r in results if isinstance(r, dict)]
            if response.status_code in (401, 403):
                raise PermanentError(f"HubSpot refused the CRM token (HTTP "
                                     f"{response.status_code}); check CONVCTL_HUBSPOT_TOKEN")
            if response.status_code != 429 and response.status_code < 500:
                raise PermanentError(f"HubSpot contact batch read failed (HTTP "
                                     f"{response.status_code})")
            if attempt < self._max_tries:
                self._sleep(_retry_after(response, attempt))
        raise TransientError(f"HubSpot contact batch read still failing after "
                             f"{self._max_tries} tries (HTTP {response.status_code})",
                             retry_after=_retry_after(response, self._max_tries))

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._client.post(BATCH_READ_PATH, content=orjson.dumps(body),
                                     headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise TransientError(f"HubSpot CRM API unreachable ({type(exc).__name__})") from exc


def _retry_after(response: httpx.Response, attempt: int) -> float:
    """``Retry-After`` seconds when given (capped at 60), else 1, 2, 4... seconds."""
    header = response.headers.get("retry-after", "").strip()
    try:
        return min(60.0, max(0.0, float(header)))
    except ValueError:
        return float(min(2 ** (attempt - 1), 30))
