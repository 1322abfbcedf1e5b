"""Fixed vocabularies of the domain: lifecycle stages, Meta events, property keys, limits."""

from __future__ import annotations

from typing import Final

# R6: the CRM's standard lifecycle stages; `other` exists in the CRM but is refused here.
STANDARD_STAGES: Final = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
REFUSED_STAGE: Final = "other"

# Display names Meta receives as event_name for lifecycle events.
STAGE_LABELS: Final = {
    "subscriber": "Subscriber",
    "lead": "Lead",
    "marketingqualifiedlead": "Marketing Qualified Lead",
    "salesqualifiedlead": "Sales Qualified Lead",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "evangelist": "Evangelist",
}

# R9: lifecycle-stage event limits per subscription tier (each selected stage counts one, R7).
TIER_LIMITS: Final = {"professional": 50, "enterprise": 100}

# R13: Meta's standard events (case-exact); anything else must be `custom:<EventName>`.
STANDARD_META_EVENTS: Final = (
    "AddPaymentInfo",
    "AddToCart",
    "AddToWishlist",
    "CompleteRegistration",
    "Contact",
    "CustomizeProduct",
    "Donate",
    "FindLocation",
    "InitiateCheckout",
    "Lead",
    "Purchase",
    "Schedule",
    "Search",
    "StartTrial",
    "SubmitApplication",
    "Subscribe",
    "ViewContent",
)
CUSTOM_EVENT_PREFIX: Final = "custom:"

# R15 / product.md §1: standard CRM contact properties and the Meta user_data key each maps to.
PROPERTY_KEYS: Final = {
    "email": "em",
    "phone": "ph",
    "mobilephone": "ph",
    "firstname": "fn",
    "lastname": "ln",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "country": "country",
    "date_of_birth": "db",
    "gender": "ge",
}
# Keys an explicit `{property: X, as: KEY}` mapping may target.
META_USER_KEYS: Final = (
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge", "external_id",
)

# Meta's user_data keys sent in clear, never hashed (Meta's customer information parameters);
# here so the manifest rules need not import the normalizers.
UNHASHED_KEYS: Final = frozenset({"client_ip_address", "client_user_agent", "fbc", "fbp",
                                  "lead_id", "subscription_id", "fb_login_id"})
