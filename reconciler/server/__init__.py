"""The control plane (product.md §4): an ASGI (FastAPI) app over the live state.

``app.create_app`` builds it; ``run.serve`` runs it under uvicorn (``convctl serve``). Routes live
in one module per resource (``accounts``, ``events``, ``locks``); ``errors`` maps the error tree
to JSON responses, ``auth`` checks bearer tokens and scopes, ``limits`` guards request bodies,
``metrics`` counts requests for Prometheus.
"""
