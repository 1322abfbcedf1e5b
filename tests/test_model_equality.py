"""``StrictModel.__eq__`` (model_base) is exactly pydantic's ``BaseModel.__eq__`` for our models.

The planner's no-op test compares thousands of nested specs; the strict base answers the common
case (same class, equal field values) itself and hands every other case to pydantic. That is
sound only while no strict model has private attributes or extra fields, which the first test
holds every subclass to; the properties compare both equalities over generated pairs of event
and account specs that differ in a few places, nested models included.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from reconciler.core import models
from reconciler.core.model_base import StrictModel


def _subclasses(cls: type[StrictModel]) -> Iterator[type[StrictModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_strict_model_has_no_private_attributes_nor_extra_fields() -> None:
    found = list(_subclasses(StrictModel))
    assert models.EventSpec in found and models.AccountSpec in found and models.Money in found
    for cls in found:
        assert cls.__private_attributes__ == {}, cls
        assert cls.model_config.get("extra") == "forbid", cls


EVENT = {"account": "acme", "adAccount": "act_1",
         "trigger": {"formSubmission": {"formId": "f1", "facebookEvent": "Lead",
                                        "value": {"amount": 10.0, "currency": "EUR"},
                                        "consent": {"property": "c", "value": "yes"}}},
         "dataSharing": {"properties": ["email", {"property": "id", "as": "external_id"}]}}
LIFECYCLE = {"account": "acme", "network": "google", "conversionAction": "601",
             "trigger": {"lifecycleStageChange": {"stages": ["lead", "1001"]}},
             "dataProcessingOptions": {"options": ["LDU"], "country": 1, "state": 1000}}
ACCOUNT = {"portalId": 1, "tier": "enterprise", "forms": [{"id": "f1", "name": "F"}],
           "customLifecycleStages": [{"id": "1001", "label": "S"}],
           "facebook": {"businessId": "12345", "pixelId": "123456789012345",
                        "adAccounts": ["act_1"], "accessToken": {"env": "T"}},
           "google": {"customerId": "1234567890", "accessToken": {"file": "/run/secrets/g"},
                      "consent": {"adUserData": "granted"},
                      "clickIdProperties": {"gclid": "hs_google_click_id"}}}
# Edits that keep a spec valid: (path, new value); a path into a list uses an index.
EDITS: dict[str, list[tuple[tuple[Any, ...], Any]]] = {
    "event": [(("account",), "other"), (("adAccount",), "act_2"), (("enabled",), False),
              (("protect",), True),
              (("trigger", "formSubmission", "formId"), "f2"),
              (("trigger", "formSubmission", "value", "amount"), 11.0),
              (("trigger", "formSubmission", "value", "amount"), 10),  # int, same value
              (("trigger", "formSubmission", "value", "currency"), "USD"),
              (("trigger", "formSubmission", "consent", "value"), "no"),
              (("trigger", "formSubmission", "predictiveLeadScore"), True),
              (("dataSharing", "properties", 0), "phone"),
              (("dataSharing", "properties", 1, "as"), "em"),
              (("dataSharing", "ipAddress"), False)],
    "lifecycle": [(("trigger", "lifecycleStageChange", "stages", 1), "customer"),
                  (("trigger", "lifecycleStageChange", "contacts"), "adInteractions"),
                  (("dataProcessingOptions", "state"), 0), (("conversionAction",), "602")],
    "account": [(("tier",), "professional"), (("forms", 0, "name"), "G"),
                (("customLifecycleStages", 0, "id"), "1002"),
                (("facebook", "adAccounts", 0), "act_2"),
                (("facebook", "accessToken"), {"env": "U"}),
                (("google", "consent", "adUserData"), "denied"),
                (("google", "clickIdProperties", "gclid"), "g")],
}
BASES = {"event": (models.EventSpec, EVENT), "lifecycle": (models.EventSpec, LIFECYCLE),
         "account": (models.AccountSpec, ACCOUNT)}


def _edited(data: dict[str, Any], edits: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for path, value in edits:
        node = out
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return out


@st.composite
def pairs(draw: st.DrawFn) -> tuple[BaseModel, BaseModel]:
    base = draw(st.sampled_from(sorted(BASES)))
    cls, data = BASES[base]
    left = draw(st.lists(st.sampled_from(EDITS[base]), max_size=2))
    right = draw(st.one_of(st.just(left), st.lists(st.sampled_from(EDITS[base]), max_size=2)))
    return (cls.model_validate(_edited(data, left)), cls.model_validate(_edited(data, right)))


@given(pairs())
def test_equality_is_pydantics(pair: tuple[BaseModel, BaseModel]) -> None:
    a, b = pair
    assert (a == b) is BaseModel.__eq__(a, b)
    assert (a != b) is (not BaseModel.__eq__(a, b))
    assert (a == b) is (a.model_dump() == b.model_dump())


@given(pairs())
def test_nested_models_compare_as_pydantic_does(pair: tuple[BaseModel, BaseModel]) -> None:
    a, b = pair
    for name in type(a).model_fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, BaseModel) and isinstance(y, BaseModel):
            assert (x == y) is BaseModel.__eq__(x, y)


def test_other_classes_and_non_models_are_pydantics_answer() -> None:
    money = models.Money(amount=1.0, currency="EUR")
    consent = models.Consent(property="amount", value="EUR")
    assert money != consent and BaseModel.__eq__(money, consent) is False
    assert money.__eq__("EUR") is NotImplemented and money != "EUR"
    assert money == models.Money(amount=1, currency="EUR")
    assert hash(money) == hash(models.Money(amount=1, currency="EUR"))  # still frozen, hashable


def test_entries_outside_the_fields_are_ignored_as_pydantic_does() -> None:
    a = models.Money(amount=1.0, currency="EUR")
    b = models.Money(amount=1.0, currency="EUR")
    b.__dict__["cached"] = "not a field"  # e.g. a cached property's value
    assert a == b and BaseModel.__eq__(a, b)
    c = models.Money(amount=2.0, currency="EUR")
    c.__dict__["cached"] = "not a field"
    assert a != c and not BaseModel.__eq__(a, c)
