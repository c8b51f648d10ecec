"""Passive outlier detection: eject endpoints that fail consecutive requests.

Envoy semantics, simplified: ``consecutive_failures`` failures in a row (connect
errors, resets, timeouts and 5xx answers) eject an endpoint for
``base_ejection_time * times_ejected`` seconds, capped at ``max_ejection_time``.
Ejections never exceed ``max_ejection_percent`` of the cluster, computed after the
ejection (``(ejected + 1) / total <= percent``, so 2 endpoints at 50% may lose one,
and a single-endpoint cluster is never ejected below 100%). Un-ejection is lazy:
the cluster calls ``uneject_due`` when ``next_expiry`` has passed; no timer task.
The multiplier decays by one per ``base_ejection_time`` spent back in rotation
(Envoy decays it per detection interval, which we do not have).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from gateway import metrics
from gateway.upstreams.config import OutlierConfig
from gateway.upstreams.endpoint import Endpoint

__all__ = ["OutlierDetector"]

log = logging.getLogger("gateway.upstreams")


class OutlierDetector:
    """Counts consecutive failures per endpoint and ejects outliers."""

    def __init__(self, cluster: str, config: OutlierConfig, endpoints: Sequence[Endpoint]) -> None:
        self.cluster = cluster
        self.config = config
        self.endpoints = tuple(endpoints)
        self.ejected_count = 0
        #: Earliest ``ejected_until`` of any ejected endpoint; +inf when none is.
        self.next_expiry = math.inf
        #: Cleared when the cluster is retired so a draining copy stops writing gauges.
        self.publish = True
        for endpoint in self.endpoints:  # ejections per endpoint read 0 until the first one
            metrics.UPSTREAM_EJECTIONS.labels(cluster, endpoint.url)

    def record_success(self, endpoint: Endpoint) -> None:
        """A non-5xx answer resets the consecutive failure counters."""
        endpoint.consecutive_failures = 0
        endpoint.consecutive_gateway_failures = 0

    def record_failure(self, endpoint: Endpoint, *, gateway: bool, now: float) -> bool:
        """Count one failure; ``gateway`` for 502/503/504 and local errors. True if ejected now."""
        endpoint.consecutive_failures += 1
        endpoint.consecutive_gateway_failures = endpoint.consecutive_gateway_failures + 1 if gateway else 0
        if endpoint.ejected:
            return False
        cfg = self.config
        tripped = endpoint.consecutive_failures >= cfg.consecutive_failures or (
            cfg.consecutive_gateway_failures is not None
            and endpoint.consecutive_gateway_failures >= cfg.consecutive_gateway_failures
        )
        return tripped and self._eject(endpoint, now)

    def _eject(self, endpoint: Endpoint, now: float) -> bool:
        cfg = self.config
        if (self.ejected_count + 1) * 100.0 > cfg.max_ejection_percent * len(self.endpoints):
            return False
        if endpoint.times_ejected and endpoint.unejected_at:
            healthy_periods = int((now - endpoint.unejected_at) / cfg.base_ejection_time)
            endpoint.times_ejected = max(0, endpoint.times_ejected - healthy_periods)
        endpoint.times_ejected += 1
        duration = min(cfg.base_ejection_time * endpoint.times_ejected, cfg.max_ejection_time)
        endpoint.ejected_until = now + duration
        endpoint.consecutive_failures = 0
        endpoint.consecutive_gateway_failures = 0
        self.ejected_count += 1
        self.next_expiry = min(self.next_expiry, endpoint.ejected_until)
        if self.publish:
            metrics.UPSTREAM_EJECTIONS.labels(self.cluster, endpoint.url).inc()
            metrics.UPSTREAM_ENDPOINT_EJECTED.labels(self.cluster, endpoint.url).set(1)
        log.warning(
            "endpoint %s of cluster %s ejected for %.1fs (ejection #%d)",
            endpoint.url, self.cluster, duration, endpoint.times_ejected,
            extra=self._log_fields(endpoint, "endpoint-ejected"),
        )
        return True

    def uneject_due(self, now: float) -> list[Endpoint]:
        """Return endpoints to rotation whose ejection time has passed; returns them."""
        if now < self.next_expiry:
            return []
        returned: list[Endpoint] = []
        next_expiry = math.inf
        for endpoint in self.endpoints:
            if not endpoint.ejected:
                continue
            if endpoint.ejected_until <= now:
                endpoint.ejected_until = 0.0
                endpoint.unejected_at = now
                self.ejected_count -= 1
                returned.append(endpoint)
                if self.publish:
                    metrics.UPSTREAM_ENDPOINT_EJECTED.labels(self.cluster, endpoint.url).set(0)
                log.info(
                    "endpoint %s of cluster %s returned to rotation",
                    endpoint.url, self.cluster,
                    extra=self._log_fields(endpoint, "endpoint-unejected"),
                )
            else:
                next_expiry = min(next_expiry, endpoint.ejected_until)
        self.next_expiry = next_expiry
        return returned

    def _log_fields(self, endpoint: Endpoint, action: str) -> dict[str, str]:
        return {"cluster": self.cluster, "endpoint": endpoint.url, "event.action": action}
