"""The forecast's line, crossing date and confidence notes (telemetry/forecast.py)."""

from __future__ import annotations

import math
from collections.abc import Callable

from telemetry.forecast import DAY, WEEK, fit, forecast

Points = list[tuple[float, float]]

NOW = 1_800_000_000.0


def _points(value: Callable[[float], float], weeks: float = 3, step: float = 3600) -> Points:
    n = int(weeks * WEEK / step)
    return [(NOW - (n - i) * step, value((n - i) * step)) for i in range(n + 1)]


def test_fit_recovers_a_line() -> None:
    line = fit([(t, 3 + 2 * t) for t in range(10)])
    assert line is not None
    assert math.isclose(line.slope, 2)
    assert math.isclose(line.level, 21)
    assert line.scatter < 1e-9


def test_steady_growth_crosses_on_the_day_of_its_line() -> None:
    # 80 now, +1 a day: 100 in 20 days
    f = forecast("r", capacity=100, usage=70, history_days=30, now=NOW,
                 peak_points=_points(lambda ago: 80 - ago / DAY))
    assert f.confident, f.notes
    assert f.crossing is not None
    assert math.isclose((f.crossing - NOW) / DAY, 20, abs_tol=0.01)
    assert f.growth_per_week is not None
    assert math.isclose(f.growth_per_week, 7, abs_tol=0.01)
    assert f.headroom is not None
    assert math.isclose(f.headroom, 0.2, abs_tol=0.001)


def test_flat_usage_never_crosses() -> None:
    f = forecast("r", capacity=100, usage=40, history_days=30, now=NOW, peak_points=_points(lambda ago: 50))
    assert f.crossing is None
    assert f.confident


def test_over_capacity_crosses_now() -> None:
    f = forecast("r", capacity=100, usage=120, history_days=30, now=NOW, peak_points=_points(lambda ago: 110))
    assert f.crossing == NOW


def test_short_history_is_not_confident() -> None:
    f = forecast("r", capacity=100, usage=70, history_days=4, now=NOW,
                 peak_points=_points(lambda ago: 80 - ago / DAY, weeks=4 / 7))
    assert not f.confident
    assert "only 4.0 days of history" in f.notes[0]


def test_a_jump_in_the_last_three_weeks_is_not_confident() -> None:
    f = forecast("r", capacity=100, usage=70, history_days=30, now=NOW,
                 peak_points=_points(lambda ago: 80 if ago < 10 * DAY else 50))
    assert not f.confident
    assert "strays" in f.notes[0]


def test_no_peak_series_says_so() -> None:
    f = forecast("r", capacity=100, usage=70, history_days=30, now=NOW, peak_points=[])
    assert not f.confident
    assert "capacity:usage:p99_1w" in f.notes[0]
