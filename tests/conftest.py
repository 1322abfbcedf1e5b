"""Shared fixtures and the hypothesis profiles (``ci``: bounded examples, no deadline)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The test suite never talks to the internet: any agent a test starts without its own fake sends
# to a closed loopback port instead of Meta's or HubSpot's real hosts.
os.environ["CONVCTL_META_BASE_URL"] = "http://127.0.0.1:9"
os.environ["CONVCTL_HUBSPOT_BASE_URL"] = "http://127.0.0.1:9"

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
