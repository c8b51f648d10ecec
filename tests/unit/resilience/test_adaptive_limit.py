"""GradientLimit: the pure adaptive concurrency algorithm (no asyncio, no clock)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from resilience.adaptive import GradientLimit


def _feed(limit: GradientLimit, rtt: float, n: int, *, in_flight: int | None = None,
          dropped: bool = False) -> list[int]:
    """``n`` samples; in_flight defaults to the current limit (the caller is not app-limited)."""
    return [limit.on_sample(rtt, in_flight=limit.limit if in_flight is None else in_flight,
                            dropped=dropped) for _ in range(n)]


def test_limit_grows_to_max_while_rtt_stays_at_the_baseline() -> None:
    limit = GradientLimit(initial_limit=10, min_limit=2, max_limit=50)
    seen = _feed(limit, 0.010, 200)
    assert seen[3] > 10
    assert seen == sorted(seen)
    assert limit.limit == 50
    assert max(seen) == 50


def test_limit_falls_when_rtt_rises_above_the_baseline_and_stops_at_min() -> None:
    limit = GradientLimit(initial_limit=40, min_limit=3, max_limit=40)
    _feed(limit, 0.010, 20)  # baseline 10 ms
    assert limit.limit == 40
    seen = _feed(limit, 0.050, 100)  # 5x the baseline: gradient at its 0.5 floor
    assert seen[0] < 40
    assert seen[5] < seen[0]
    assert limit.limit == 3
    assert min(seen) == 3


def test_rtt_within_tolerance_does_not_lower_the_limit() -> None:
    limit = GradientLimit(initial_limit=20, max_limit=20, tolerance=1.5)
    _feed(limit, 0.010, 20)
    _feed(limit, 0.014, 50)  # +40 %: still inside the 1.5x tolerance
    assert limit.limit == 20


def test_dropped_samples_lower_the_limit_even_when_fast_and_leave_the_baseline_alone() -> None:
    limit = GradientLimit(initial_limit=20, min_limit=2, max_limit=20)
    _feed(limit, 0.010, 20)
    baseline = limit.long_rtt
    seen = _feed(limit, 0.001, 10, dropped=True)  # fast 503s from an overloaded endpoint
    assert seen[0] < 20
    assert seen == sorted(seen, reverse=True)
    assert limit.long_rtt == baseline


def test_an_app_limited_caller_does_not_grow_the_limit() -> None:
    limit = GradientLimit(initial_limit=20, max_limit=200)
    _feed(limit, 0.010, 100, in_flight=3)
    assert limit.limit == 20


def test_an_app_limited_caller_still_shrinks_when_latency_rises() -> None:
    limit = GradientLimit(initial_limit=20, min_limit=1, max_limit=200)
    _feed(limit, 0.010, 20, in_flight=3)
    _feed(limit, 0.100, 20, in_flight=3)
    assert limit.limit < 20


def test_limit_recovers_after_latency_returns_to_normal() -> None:
    limit = GradientLimit(initial_limit=30, min_limit=2, max_limit=30)
    _feed(limit, 0.010, 20)
    _feed(limit, 0.080, 40)
    low = limit.limit
    _feed(limit, 0.010, 200)
    assert low < 10
    assert limit.limit == 30


def test_zero_rtt_from_a_coarse_clock_is_harmless() -> None:
    limit = GradientLimit(initial_limit=5, max_limit=10)
    assert 5 <= limit.on_sample(0.0, in_flight=5, dropped=False) <= 10
    assert 5 <= limit.on_sample(0.0, in_flight=5, dropped=False) <= 10


@pytest.mark.parametrize("kwargs", [
    {"min_limit": 0}, {"initial_limit": 1, "min_limit": 2}, {"initial_limit": 300},
    {"smoothing": 0.0}, {"smoothing": 1.5}, {"tolerance": 0.9},
])
def test_invalid_parameters_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the parameter
        GradientLimit(**kwargs)  # type: ignore[arg-type]


def test_importing_the_module_pulls_in_neither_aiohttp_nor_metrics_nor_a_deployable() -> None:
    code = ("import sys, resilience.adaptive; "
            "bad = {'aiohttp', 'prometheus_client', 'gateway', 'sidecar'} & set(sys.modules); "
            "print(*sorted(bad)); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
