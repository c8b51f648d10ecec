"""Cluster manager: named clusters of endpoints with balancing, health and resilience.

The proxy handler needs only ``ClusterManager.get(name).request(...)``. Import what you need from
the module that defines it (this file imports nothing):

* ``manager`` — ``ClusterManager``: the named clusters, built from config, swapped on reload;
* ``cluster`` — ``Cluster``: endpoints, admission (adaptive limiter, breaker) and bookkeeping;
* ``config`` — the cluster config types and their parsers (timeouts, retries, breaker, health);
* ``balancers``, ``endpoint``, ``health``, ``outlier``, ``breaker``, ``retry_budget`` — one concern each;
* ``http1`` — the pooled HTTP/1.1 client on llhttp, the transport the clusters use.

Adaptive concurrency, load shedding and backoff are ``resilience``'s (shared with the sidecar).
"""
