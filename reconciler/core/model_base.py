"""What the manifest models are built from: the formats (regular expressions, published in the
JSON Schema and checked by ``rules.py``), bounds, the networks, the strict base model, and
``SecretRef`` (a token by reference, never by value). ``models.py`` re-exports all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

API_VERSION = "convctl/v1"
# Formats, published in the JSON Schema and checked by ``rules.py`` with ``re.fullmatch`` and
# ``re.ASCII`` (so ``$`` never accepts a trailing newline). ASCII classes only: ``\d`` would match
# fullwidth or Arabic-Indic digits in Python and in pydantic's Rust regex alike.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
STAGE_ID_PATTERN = r"^[0-9]{1,20}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
BUSINESS_ID_PATTERN = r"^[0-9]{5,20}$"
PIXEL_ID_PATTERN = r"^[0-9]{15,16}$"
AD_ACCOUNT_PATTERN = r"^act_[0-9]{1,20}$"
COUNTRY_CODE_PATTERN = r"^[1-9][0-9]{0,2}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
# The ad networks (R1): Meta is the default, LinkedIn and Google Ads are siblings.
NETWORKS = ("meta", "linkedin", "google")
LINKEDIN_AD_ACCOUNT_PATTERN = r"^urn:li:sponsoredAccount:[0-9]{1,20}$"
LINKEDIN_CONVERSION_RULE_PATTERN = r"^urn:lla:llaPartnerConversion:[0-9]{1,20}$"
LINKEDIN_VERSION_PATTERN = r"^20[0-9]{2}(0[1-9]|1[0-2])$"
DEFAULT_LINKEDIN_VERSION = "202611"
GOOGLE_CUSTOMER_ID_PATTERN = r"^[0-9]{10}$"
GOOGLE_CONVERSION_ACTION_PATTERN = r"^[0-9]{1,20}$"


def whole_match(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A whole-string, ASCII-only matcher for one of these published patterns."""
    return re.compile(pattern, re.ASCII).fullmatch
# Bounds. A HubSpot portal id is a positive integer well inside 2**53 - 1, the largest integer a
# JSON client (JavaScript) holds exactly; SQLite's INTEGER (signed 64-bit) holds it too.
MAX_PORTAL_ID = 2**53 - 1
# A conversion value: finite, > 0 and at most 10**12, which a double still holds to the cent
# (a large deal in a currency with small units, e.g. VND or IDR, stays far below it).
MAX_AMOUNT = 10**12


class ResourceKey(NamedTuple):
    """Identity of a conversion event: (account name, event name) (architecture rule 3)."""

    account: str
    name: str

    def __str__(self) -> str:
        return f"{self.account}/{self.name}"


class StrictModel(BaseModel):
    """Every manifest model: unknown fields refused, frozen, fields by name or alias."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def __eq__(self, other: object) -> bool:
        """pydantic's equality, its common case first: same class and equal field values.

        pydantic's ``BaseModel.__eq__`` also compares private attributes and extra fields, and
        ignores non-field entries of the instance dict; a strict model has none of them (extra
        fields are forbidden, no private attributes: tests/test_model_equality.py holds every
        subclass to that and this to pydantic's result), so equal dicts of the same class are
        equal models. Anything else is pydantic's own answer. A plan compares thousands of
        nested specs: this is about twice as fast."""
        if type(other) is type(self) and self.__dict__ == other.__dict__:
            return True
        return super().__eq__(other)


def pattern(regex: str) -> dict[str, Any]:
    """A field's ``json_schema_extra``: the format, published in the JSON Schema."""
    return {"pattern": regex}


class SecretRef(StrictModel):
    """A reference to a secret; the secret itself never appears in a manifest."""

    env: str | None = Field(default=None, description="Name of an environment variable.",
                            json_schema_extra=pattern(ENV_NAME_PATTERN))
    file: str | None = Field(default=None, description="Absolute path of a file holding the "
                             "token, inside the agent's secrets folder (--secrets-dir, "
                             "default /run/secrets).")

    @model_validator(mode="before")
    @classmethod
    def _refuse_literal(cls, data: Any) -> Any:
        if isinstance(data, str | int | float):
            raise PydanticCustomError(
                "E104",
                "a literal access token is refused (value not shown); use {env: NAME} or "
                "{file: PATH}",
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise PydanticCustomError("E105", "give exactly one of 'env' or 'file'")
        return self
