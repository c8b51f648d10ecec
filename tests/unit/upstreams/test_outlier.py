"""Passive outlier detection: thresholds, growing and capped ejection, max percent, lazy return."""

from __future__ import annotations

import math

from gateway.upstreams.config import OutlierConfig
from gateway.upstreams.endpoint import Endpoint
from gateway.upstreams.outlier import OutlierDetector

T0 = 1000.0


def _detector(n: int = 4, **overrides: float) -> tuple[OutlierDetector, list[Endpoint]]:
    settings: dict[str, float] = {
        "consecutive_failures": 3,
        "base_ejection_time": 10.0,
        "max_ejection_time": 25.0,
        "max_ejection_percent": 50.0,
        **overrides,
    }
    eps = [Endpoint(f"http://10.0.0.{i}:80") for i in range(n)]
    return OutlierDetector("unit-outlier", OutlierConfig(**settings), eps), eps  # type: ignore[arg-type]


def _fail(det: OutlierDetector, ep: Endpoint, times: int, now: float = T0, *, gateway: bool = True) -> bool:
    return [det.record_failure(ep, gateway=gateway, now=now) for _ in range(times)][-1]


def test_ejects_after_consecutive_failures_only() -> None:
    det, eps = _detector()
    assert not _fail(det, eps[0], 2)
    assert not eps[0].ejected
    assert det.record_failure(eps[0], gateway=True, now=T0)
    assert eps[0].ejected
    assert not eps[0].eligible
    assert eps[0].ejected_until == T0 + 10.0
    assert det.next_expiry == T0 + 10.0


def test_success_resets_the_consecutive_counter() -> None:
    det, eps = _detector()
    _fail(det, eps[0], 2)
    det.record_success(eps[0])
    assert not _fail(det, eps[0], 2)
    assert not eps[0].ejected


def test_ejection_time_grows_with_each_ejection_and_is_capped() -> None:
    det, eps = _detector()
    ep = eps[0]
    durations = []
    now = T0
    for _ in range(4):
        assert _fail(det, ep, 3, now)
        durations.append(ep.ejected_until - now)
        now = ep.ejected_until
        assert det.uneject_due(now) == [ep]
    assert durations == [10.0, 20.0, 25.0, 25.0]


def test_never_ejects_more_than_max_percent() -> None:
    det, eps = _detector(n=4)
    assert _fail(det, eps[0], 3)
    assert _fail(det, eps[1], 3)
    assert not _fail(det, eps[2], 3)  # 3 of 4 would be 75% > 50%
    assert det.ejected_count == 2
    assert not eps[2].ejected


def test_two_endpoints_at_fifty_percent_may_lose_one() -> None:
    det, eps = _detector(n=2)
    assert _fail(det, eps[0], 3)
    assert not _fail(det, eps[1], 3)


def test_single_endpoint_cluster_is_never_ejected_below_100_percent() -> None:
    det, eps = _detector(n=1)
    assert not _fail(det, eps[0], 10)
    det100, eps100 = _detector(n=1, max_ejection_percent=100.0)
    assert _fail(det100, eps100[0], 3)


def test_uneject_is_lazy_and_exact() -> None:
    det, eps = _detector()
    _fail(det, eps[0], 3, T0)
    _fail(det, eps[1], 3, T0 + 5)
    assert det.uneject_due(T0 + 9.9) == []
    assert det.uneject_due(T0 + 10.0) == [eps[0]]
    assert eps[0].eligible
    assert det.next_expiry == T0 + 15.0
    assert det.uneject_due(T0 + 15.0) == [eps[1]]
    assert det.next_expiry == math.inf
    assert det.ejected_count == 0


def test_gateway_failure_detector_counts_only_502_503_504_in_a_row() -> None:
    det, eps = _detector(consecutive_failures=10, consecutive_gateway_failures=2)
    assert not det.record_failure(eps[0], gateway=True, now=T0)
    assert not det.record_failure(eps[0], gateway=False, now=T0)  # a 500 breaks the gateway streak
    assert not det.record_failure(eps[0], gateway=True, now=T0)
    assert det.record_failure(eps[0], gateway=True, now=T0)


def test_ejection_multiplier_decays_while_back_in_rotation() -> None:
    det, eps = _detector()
    ep = eps[0]
    _fail(det, ep, 3, T0)
    det.uneject_due(T0 + 10)
    _fail(det, ep, 3, T0 + 11)
    assert ep.ejected_until - (T0 + 11) == 20.0  # failed again soon: longer
    det.uneject_due(T0 + 31)
    later = T0 + 31 + 100.0  # ten base periods healthy
    _fail(det, ep, 3, later)
    assert ep.ejected_until - later == 10.0
