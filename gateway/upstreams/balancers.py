"""Load balancers: choose one endpoint among the currently eligible ones.

Every balancer implements ``pick(candidates, *, hash_key, exclude)``. The cluster
passes only eligible endpoints (healthy and not ejected) as ``candidates`` and the
endpoints already tried by this request as ``exclude``; exclusion is a preference,
not a filter: when every candidate is excluded the balancer picks among all of
them (a retry on the same endpoint beats no retry). An empty ``candidates`` gives
``None`` and the cluster answers ``NoHealthyEndpoint`` -- we have no Envoy-style
panic mode that sends traffic to unhealthy endpoints; see ``cluster.py``.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from gateway.upstreams.config import BalancerKind
from gateway.upstreams.endpoint import Endpoint

__all__ = [
    "Balancer",
    "ConsistentHash",
    "LeastRequest",
    "PeakEwma",
    "RoundRobin",
    "make_balancer",
]


class Balancer(Protocol):
    """Chooses an endpoint for one attempt."""

    def pick(
        self, candidates: Sequence[Endpoint], *, hash_key: str | None, exclude: Collection[Endpoint]
    ) -> Endpoint | None: ...


def _preferred(candidates: Sequence[Endpoint], exclude: Collection[Endpoint]) -> Sequence[Endpoint]:
    if not exclude:
        return candidates
    rest = [ep for ep in candidates if ep not in exclude]
    return rest or candidates


class RoundRobin:
    """Cycle through the candidates; the start offset is random so workers don't align."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._next = (rng or random).randrange(1 << 16)

    def pick(
        self, candidates: Sequence[Endpoint], *, hash_key: str | None, exclude: Collection[Endpoint]
    ) -> Endpoint | None:
        pool = _preferred(candidates, exclude)
        if not pool:
            return None
        self._next += 1
        return pool[self._next % len(pool)]


class _PowerOfTwo:
    """Power of two random choices over a load score (lower is better)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def _score(self, endpoint: Endpoint) -> float:
        raise NotImplementedError

    def pick(
        self, candidates: Sequence[Endpoint], *, hash_key: str | None, exclude: Collection[Endpoint]
    ) -> Endpoint | None:
        pool = _preferred(candidates, exclude)
        n = len(pool)
        if n <= 1:
            return pool[0] if n else None
        i = self._rng.randrange(n)
        j = self._rng.randrange(n - 1)
        if j >= i:  # two distinct indexes without a retry loop
            j += 1
        a, b = pool[i], pool[j]
        return b if self._score(b) < self._score(a) else a


class LeastRequest(_PowerOfTwo):
    """P2C on active requests -- Envoy's default ``LEAST_REQUEST``."""

    def _score(self, endpoint: Endpoint) -> float:
        return endpoint.active


class PeakEwma(_PowerOfTwo):
    """P2C on peak-EWMA latency x (active + 1), as in Finagle and Linkerd."""

    def __init__(
        self, rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rng)
        self._clock = clock
        self._now = 0.0

    def pick(
        self, candidates: Sequence[Endpoint], *, hash_key: str | None, exclude: Collection[Endpoint]
    ) -> Endpoint | None:
        self._now = self._clock()  # one clock read per pick, not per score
        return super().pick(candidates, hash_key=hash_key, exclude=exclude)

    def _score(self, endpoint: Endpoint) -> float:
        return endpoint.ewma_score(self._now)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class ConsistentHash:
    """Hash ring with virtual nodes over *all* configured endpoints.

    The ring never changes when endpoints become ineligible: a key walks clockwise
    to the first eligible endpoint, so only the keys owned by a departed endpoint
    move, and they move back when it returns. Without a key it picks at random.
    """

    def __init__(
        self, endpoints: Sequence[Endpoint], *, vnodes: int = 160, rng: random.Random | None = None
    ) -> None:
        points = sorted(
            (_hash64(f"{ep.url}#{i}"), index) for index, ep in enumerate(endpoints) for i in range(vnodes)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [endpoints[index] for _, index in points]
        self._rng = rng or random.Random()

    def pick(
        self, candidates: Sequence[Endpoint], *, hash_key: str | None, exclude: Collection[Endpoint]
    ) -> Endpoint | None:
        if not candidates:
            return None
        if hash_key is None:
            pool = _preferred(candidates, exclude)
            return pool[self._rng.randrange(len(pool))]
        allowed = set(_preferred(candidates, exclude))
        start = bisect.bisect_left(self._hashes, _hash64(hash_key))
        owners = self._owners
        size = len(owners)
        for step in range(size):
            owner = owners[(start + step) % size]
            if owner in allowed:
                return owner
        return None  # candidates outside the ring: cannot happen for cluster-built rings


def make_balancer(
    kind: BalancerKind,
    endpoints: Sequence[Endpoint],
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Balancer:
    """Build the balancer named by ``ClusterConfig.balancer`` for these endpoints.

    ``clock`` must be the clock the cluster stamps latencies with (the loop's).
    """
    if kind == "round_robin":
        return RoundRobin(rng)
    if kind == "least_request":
        return LeastRequest(rng)
    if kind == "ewma":
        return PeakEwma(rng, clock)
    if kind == "consistent_hash":
        return ConsistentHash(endpoints, rng=rng)
    raise ValueError(f"unknown balancer {kind!r}")
