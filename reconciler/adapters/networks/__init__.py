"""Senders to the ad networks (httpx): one ``Destination`` per network (docs/networks.md)."""
