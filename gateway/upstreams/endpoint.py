"""Mutable per-endpoint state shared by the balancer, health checker and outlier detector.

One ``Endpoint`` per configured base URL, owned by its cluster and mutated only
from the event loop thread, so plain attributes (no locks) are enough.
"""

from __future__ import annotations

import math

__all__ = ["EWMA_DECAY_SECONDS", "Endpoint"]

#: Time constant of the peak-EWMA latency estimate (Finagle/Linkerd use ~10 s).
EWMA_DECAY_SECONDS = 10.0


class Endpoint:
    """State of one endpoint: load, health, outlier status, latency estimate.

    Starts *healthy*: a freshly started (or reloaded) gateway serves traffic at
    once instead of answering 503 for ``interval * healthy_threshold`` seconds,
    and a dead endpoint is caught within a few requests by passive outlier
    detection and retries. (Envoy can be configured to hold new hosts out of
    rotation until their first check passes; we deliberately do not.)
    """

    __slots__ = (
        "active",
        "consecutive_failures",
        "consecutive_gateway_failures",
        "ejected_until",
        "ewma_cost",
        "ewma_stamp",
        "hc_failures",
        "hc_successes",
        "healthy",
        "times_ejected",
        "unejected_at",
        "url",
    )

    def __init__(self, url: str) -> None:
        #: Configured base URL without trailing slash; also the metric label.
        self.url = url
        #: Requests currently sent to this endpoint and not yet released.
        self.active = 0
        self.healthy = True
        self.hc_successes = 0
        self.hc_failures = 0
        self.consecutive_failures = 0
        self.consecutive_gateway_failures = 0
        #: Loop time until which the endpoint is ejected; 0.0 when not ejected.
        self.ejected_until = 0.0
        self.times_ejected = 0
        self.unejected_at = 0.0
        #: Peak-EWMA latency estimate in seconds and the loop time of its last update.
        self.ewma_cost = 0.0
        self.ewma_stamp = 0.0

    @property
    def ejected(self) -> bool:
        """True while passive outlier detection keeps the endpoint out of rotation."""
        return self.ejected_until > 0.0

    @property
    def eligible(self) -> bool:
        """True if the endpoint may receive traffic (healthy and not ejected)."""
        return self.healthy and self.ejected_until == 0.0

    def observe_latency(self, seconds: float, now: float) -> None:
        """Feed one attempt's latency into the peak-EWMA estimate.

        Peak: a sample above the estimate replaces it at once (react to slowness
        immediately); lower samples pull it down with weight ``exp(-dt/tau)``.
        """
        if seconds >= self.ewma_cost:
            self.ewma_cost = seconds
        else:
            weight = math.exp(-(now - self.ewma_stamp) / EWMA_DECAY_SECONDS)
            self.ewma_cost = self.ewma_cost * weight + seconds * (1.0 - weight)
        self.ewma_stamp = now

    def ewma_score(self, now: float) -> float:
        """Load score for the EWMA balancer: decayed latency x (active + 1).

        The estimate decays towards 0 while no samples arrive so that an endpoint
        that was slow once is eventually tried again.
        """
        cost = self.ewma_cost
        if cost and now > self.ewma_stamp:
            cost *= math.exp(-(now - self.ewma_stamp) / EWMA_DECAY_SECONDS)
        return cost * (self.active + 1)

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, active={self.active}, healthy={self.healthy}, ejected={self.ejected})"
