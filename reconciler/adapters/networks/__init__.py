"""The networks' senders (``Destination``s, ``services.ports``): one module per network, each
mapping every answer of its API (and every transport failure) to a ``core.networks.Outcome``;
``dry_run`` is the destination that writes instead of sending."""
