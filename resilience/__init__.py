"""What every deployable needs to stay up under load: shared by the gateway and the sidecar, owned by neither.

* ``resilience.adaptive`` — adaptive concurrency: the gradient limit algorithm and the gate that
  follows it (the gateway's clusters, the sidecar's CRM → MES relay);
* ``resilience.shedding`` — load shedding: priorities, the bounded priority wait queue and
  ``LoadShed``;
* ``resilience.backoff`` — capped exponential backoff with full jitter, the one retry and
  reconnect delay policy;
* ``resilience.problem`` — RFC 9457 ``application/problem+json`` answers;
* ``resilience.cancellation`` — ending background loops whose cancellation a library swallowed
  (``stop_requested``, ``cancel_and_wait``);
* ``resilience.forwarding`` — hop-by-hop removal and ``X-Forwarded-*`` between a client and
  what is behind us.

Imports only ``contracts``, the standard library and third-party libraries — never a deployable
(``gateway``, ``sidecar``, ``legacy_adapters``) nor the simulator — and creates no metrics:
callers count (``LoadShed.reason``, ``AdaptiveLimiter.limit``/``queued``) with their own
``metrics.py``. ``tests/unit/test_import_layers.py`` keeps it so. Import from the submodule
you need; this file imports nothing.
"""
