"""``If-Match`` takes ASCII digits only: ``str.isdigit`` also accepts superscripts (``²``, a
latin-1 byte a client can send) and other scripts' digits, which ``int()`` then refused with a
500 (issue 10, item 6: ASCII classes everywhere)."""

from __future__ import annotations

from serverkit import Server
from statekit import account_spec, form_event

ACCOUNT = "ifmatch"


def test_non_ascii_digits_in_if_match_are_a_400_and_change_nothing(server: Server) -> None:
    with server.client("admin") as client:
        spec = account_spec().model_dump(mode="json", by_alias=True)
        assert client.put(f"/v1/accounts/{ACCOUNT}", json={"spec": spec}).status_code == 201
        body = form_event("e", account=ACCOUNT).model_dump(mode="json", by_alias=True,
                                                          exclude={"account"})
        event = client.post(f"/v1/accounts/{ACCOUNT}/events", json=body).json()
        for value in (b"\xb2", b"1\xb9", "\u0661".encode()):
            response = client.delete(f"/v1/events/{event['id']}", headers={"If-Match": value})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "invalid_header"
        assert client.get(f"/v1/events/{event['id']}").status_code == 200
        assert client.delete(f"/v1/events/{event['id']}",
                             headers={"If-Match": "1"}).status_code == 204


