"""resilience.backoff: capped exponential backoff with full jitter, the one delay policy."""

from __future__ import annotations

import random

import pytest

from resilience.backoff import Backoff, backoff_ceiling, backoff_delay


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_ceiling(a, base=1, cap=5) for a in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert 0.0 <= backoff_delay(1, base=1, cap=5) <= 1.0


def test_a_huge_attempt_number_waits_the_cap() -> None:
    assert backoff_ceiling(10_000, base=0.025, cap=0.25) == 0.25


def test_the_delay_is_full_jitter_over_the_whole_ceiling() -> None:
    """Full jitter draws from [0, ceiling]: waits below half the ceiling happen (equal jitter never)."""
    rng = random.Random(14)
    delays = [backoff_delay(3, base=1, cap=60, rng=rng) for _ in range(400)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert min(delays) < 0.4
    assert max(delays) > 3.6
    assert sum(d < 2.0 for d in delays) > 100  # about half of them


def test_a_reconnect_loop_backs_off_until_a_success_resets_it() -> None:
    backoff = Backoff(base=0.1, cap=0.4, rng=random.Random(1))
    ceilings = []
    for _ in range(4):
        delay = backoff.next_delay()
        ceilings.append(backoff_ceiling(backoff.failures, base=0.1, cap=0.4))
        assert 0.0 <= delay <= ceilings[-1]
    assert ceilings == [0.1, 0.2, 0.4, 0.4]
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next_delay() <= 0.1


@pytest.mark.parametrize(("base", "cap"), [(-0.1, 1.0), (2.0, 1.0)])
def test_invalid_bounds_are_rejected(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="base <= cap"):
        Backoff(base=base, cap=cap)
