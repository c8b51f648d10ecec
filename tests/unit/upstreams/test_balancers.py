"""Balancers: distribution, exclusion, load and latency awareness, hash stability."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.upstreams.balancers import ConsistentHash, LeastRequest, PeakEwma, RoundRobin, make_balancer
from gateway.upstreams.endpoint import Endpoint


def _endpoints(n: int) -> list[Endpoint]:
    return [Endpoint(f"http://10.0.0.{i}:80") for i in range(n)]


def test_round_robin_spreads_evenly() -> None:
    eps = _endpoints(3)
    rr = RoundRobin(random.Random(1))
    counts = Counter(rr.pick(eps, hash_key=None, exclude=()) for _ in range(300))
    assert counts == {eps[0]: 100, eps[1]: 100, eps[2]: 100}


def test_round_robin_avoids_excluded_endpoint() -> None:
    eps = _endpoints(3)
    rr = RoundRobin(random.Random(1))
    picks = {rr.pick(eps, hash_key=None, exclude=[eps[0]]) for _ in range(50)}
    assert picks == {eps[1], eps[2]}


@pytest.mark.parametrize("kind", ["round_robin", "least_request", "ewma", "consistent_hash"])
def test_every_balancer_falls_back_to_excluded_when_nothing_else(kind: str) -> None:
    eps = _endpoints(2)
    balancer = make_balancer(kind, eps, rng=random.Random(3))  # type: ignore[arg-type]
    assert balancer.pick(eps, hash_key="k", exclude=eps) in eps
    assert balancer.pick([], hash_key="k", exclude=()) is None


def test_least_request_never_picks_the_most_loaded_of_three() -> None:
    eps = _endpoints(3)
    eps[0].active = 50
    eps[1].active = 1
    lr = LeastRequest(random.Random(7))
    counts = Counter(lr.pick(eps, hash_key=None, exclude=()) for _ in range(1000))
    assert counts[eps[0]] == 0
    assert counts[eps[2]] > counts[eps[1]] > 0  # idle beats lightly loaded when compared


def test_least_request_uses_every_endpoint_when_load_is_equal() -> None:
    eps = _endpoints(4)
    lr = LeastRequest(random.Random(11))
    counts = Counter(lr.pick(eps, hash_key=None, exclude=()) for _ in range(4000))
    assert all(600 < counts[ep] < 1400 for ep in eps), counts


def test_least_request_respects_exclusion() -> None:
    eps = _endpoints(3)
    lr = LeastRequest(random.Random(5))
    assert all(lr.pick(eps, hash_key=None, exclude=[eps[2]]) is not eps[2] for _ in range(100))


def test_ewma_prefers_the_faster_endpoint() -> None:
    now = 100.0
    slow, fast = _endpoints(2)
    slow.observe_latency(0.5, now)
    fast.observe_latency(0.01, now)
    ewma = PeakEwma(random.Random(1), clock=lambda: now)
    assert all(ewma.pick([slow, fast], hash_key=None, exclude=()) is fast for _ in range(50))


def test_ewma_weighs_latency_by_outstanding_requests() -> None:
    now = 100.0
    a, b = _endpoints(2)
    a.observe_latency(0.01, now)
    b.observe_latency(0.02, now)
    a.active = 5  # 0.01 * 6 > 0.02 * 1
    ewma = PeakEwma(random.Random(1), clock=lambda: now)
    assert ewma.pick([a, b], hash_key=None, exclude=()) is b


def test_ewma_peak_reacts_at_once_and_decays_slowly() -> None:
    ep = Endpoint("http://x:1")
    ep.observe_latency(0.01, 0.0)
    ep.observe_latency(1.0, 1.0)
    assert ep.ewma_cost == 1.0  # a spike replaces the estimate immediately
    ep.observe_latency(0.01, 2.0)
    assert 0.8 < ep.ewma_cost < 1.0  # one fast sample only nudges it down
    assert ep.ewma_score(2.0) > ep.ewma_score(60.0)  # and it decays while idle


def test_consistent_hash_is_sticky_and_spreads_keys() -> None:
    eps = _endpoints(4)
    ring = ConsistentHash(eps)
    keys = [f"partner-{i}" for i in range(2000)]
    first = {k: ring.pick(eps, hash_key=k, exclude=()) for k in keys}
    assert all(ring.pick(eps, hash_key=k, exclude=()) is first[k] for k in keys)
    counts = Counter(first.values())
    assert all(300 < counts[ep] < 700 for ep in eps), counts


def test_consistent_hash_moves_only_keys_of_a_departed_endpoint() -> None:
    eps = _endpoints(4)
    ring = ConsistentHash(eps)
    keys = [f"order-{i}" for i in range(2000)]
    before = {k: ring.pick(eps, hash_key=k, exclude=()) for k in keys}
    remaining = [ep for ep in eps if ep is not eps[1]]
    after = {k: ring.pick(remaining, hash_key=k, exclude=()) for k in keys}
    moved = {k for k in keys if before[k] is not after[k]}
    assert moved == {k for k in keys if before[k] is eps[1]}
    assert moved  # the departed endpoint did own keys
    restored = {k: ring.pick(eps, hash_key=k, exclude=()) for k in keys}
    assert restored == before


def test_consistent_hash_exclusion_acts_like_departure_for_one_request() -> None:
    eps = _endpoints(3)
    ring = ConsistentHash(eps)
    owner = ring.pick(eps, hash_key="k", exclude=())
    assert owner is not None
    retry = ring.pick(eps, hash_key="k", exclude=[owner])
    assert retry is not None
    assert retry is not owner
    assert retry is ring.pick([ep for ep in eps if ep is not owner], hash_key="k", exclude=())
