"""Loopback fakes of the remote APIs the agent talks to (Graph API, HubSpot CRM)."""
