"""Senders, one per ad network (httpx): each maps its network's answers to an ``Outcome``."""
