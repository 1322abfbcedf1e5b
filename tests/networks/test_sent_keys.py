"""What a plan says an event sends (core/network_rules.py) is what the agent's builders send
(core/networks/): every shared key, hashed or in clear, for LinkedIn and Google Ads (R15)."""

from __future__ import annotations

import re
from typing import Any

import googlekit as gk
import linkedinkit as lk
import pytest

from reconciler.core import network_rules
from reconciler.core.networks import rules_for

HEX64 = re.compile(r"[0-9a-f]{64}")
EVERY_SHARED = ["email", "phone", "firstname", "lastname", "zip", "country", "city", "state"]


def _leaves(obj: Any, path: str = "") -> dict[str, Any]:
    """Every scalar of a payload by its dotted path (lists by index)."""
    found: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            found.update(_leaves(value, f"{path}.{key}"))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found.update(_leaves(value, f"{path}[{i}]"))
    else:
        found[path] = obj
    return found


def _payload(network: str) -> dict[str, Any]:
    kit = lk if network == "linkedin" else gk
    live = kit.form_event(properties=EVERY_SHARED)
    account = kit.account_spec()
    who = (lk.contact(email="Ann@Example.com", phone="+16505551212", firstname="Ann",
                      lastname="Lee", zip="94035", country="United States", city="Menlo Park",
                      state="CA", li_consent="yes", li_fat_id="df5gf5-gh6t7")
           if network == "linkedin" else gk.contact())
    crm = lk.submission() if network == "linkedin" else gk.submission(gk.CREATED)
    return rules_for(network).builder(live, account).build(crm, who)


@pytest.mark.parametrize("network", ["linkedin", "google"])
def test_the_shared_keys_a_plan_lists_are_the_ones_the_builder_sends(network: str) -> None:
    payload = _payload(network)
    sent = set(rules_for(network).match_keys(payload)) - {"ip", "ua"}
    assert sent == set(network_rules.SENT_KEYS[network])


def test_linkedin_hashes_the_email_only() -> None:
    leaves = _leaves(_payload("linkedin"))
    hashed = {path for path, value in leaves.items()
              if isinstance(value, str) and HEX64.fullmatch(value)}
    assert hashed == {".user.userIds[0].idValue"}  # SHA256_EMAIL; names and country in clear
    assert leaves[".user.userInfo.firstName"] == "Ann"
    assert not network_rules.is_hashed("fn", "linkedin")
    assert network_rules.is_hashed("em", "linkedin")
    assert not any("ip" in path.lower().split(".")[-1] for path in leaves)  # no IP field


def test_google_hashes_email_phone_and_names_but_not_the_address_codes() -> None:
    leaves = _leaves(_payload("google"))
    for path, value in leaves.items():
        field = path.rsplit(".", 1)[-1]
        if field in ("emailAddress", "phoneNumber", "givenName", "familyName"):
            assert HEX64.fullmatch(value), path
        if field in ("regionCode", "postalCode"):
            assert not HEX64.fullmatch(value), path
    assert {k for k in ("em", "ph", "fn", "ln", "zp", "country")
            if network_rules.is_hashed(k, "google")} == {"em", "ph", "fn", "ln"}
