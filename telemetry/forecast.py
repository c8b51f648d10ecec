"""When does a resource reach its capacity? A least-squares line through its weekly peak.

The same figure the alerts read (``capacity:usage:p99_1w``, its one-week trend: see
:mod:`telemetry.capacity_rules`), plus what PromQL cannot say: how sure the line is. A forecast
is *low confidence* when the history is shorter than two weeks (a week for the weekly peak, a
week for its trend), when the peak of the last three weeks strays from a line (a level shift, a
change of trend, bursts longer than the peak ignores), or when the last week's slope is itself
uncertain; the crossing is then still printed,
with the reasons, but ``python -m telemetry forecast`` does not fail on it unless ``--strict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DAY = 86400.0
WEEK = 7 * DAY
MIN_HISTORY_DAYS = 14.0
STEADY_WEEKS = 3  # the weekly peak must have stayed on one line this long
#: the peak's scatter around that line, as a share of the capacity, above which the line is noise
MAX_SCATTER = 0.03
#: the slope's 95 % interval (± 2 standard errors) as a share of the slope, above which it is a guess
MAX_SLOPE_UNCERTAINTY = 0.5


@dataclass(frozen=True)
class Line:
    """``value(t) = level + slope * (t - at)``; per second; ``scatter`` is the residuals' std."""

    at: float
    level: float
    slope: float
    slope_error: float
    scatter: float
    points: int


def fit(points: list[tuple[float, float]]) -> Line | None:
    """Least squares through ``(time, value)`` points, anchored at the last time; None below 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    ts = [t for t, _ in points]
    vs = [v for _, v in points]
    t_mean = sum(ts) / n
    v_mean = sum(vs) / n
    stt = sum((t - t_mean) ** 2 for t in ts)
    if stt == 0:
        return None
    slope = sum((t - t_mean) * (v - v_mean) for t, v in points) / stt
    residuals = [v - (v_mean + slope * (t - t_mean)) for t, v in points]
    sse = sum(r * r for r in residuals)
    scatter = math.sqrt(sse / (n - 2))
    at = ts[-1]
    return Line(at=at, level=v_mean + slope * (at - t_mean), slope=slope,
                slope_error=scatter / math.sqrt(stt), scatter=scatter, points=n)


@dataclass(frozen=True)
class Forecast:
    """One resource's answer; times are Unix seconds, ``None`` when it does not cross."""

    resource: str
    capacity: float
    usage: float | None
    peak: float | None
    growth_per_week: float | None
    history_days: float
    crossing: float | None
    crossing_earliest: float | None
    crossing_latest: float | None
    notes: list[str] = field(default_factory=list)
    #: where the capacity comes from: measured (a run), provisioned (set by the operator), live (PromQL)
    capacity_source: str = ""

    @property
    def confident(self) -> bool:
        return not self.notes

    @property
    def headroom(self) -> float | None:
        """1 - weekly peak / capacity (the live usage when there is no peak yet)."""
        level = self.peak if self.peak is not None else self.usage
        return None if level is None else 1 - level / self.capacity


def _crossing(level: float, slope: float, capacity: float, now: float) -> float | None:
    if level >= capacity:
        return now
    return now + (capacity - level) / slope if slope > 0 else None


def forecast(resource: str, *, capacity: float, usage: float | None, peak_points: list[tuple[float, float]],
             history_days: float, now: float) -> Forecast:
    """The crossing of ``capacity`` by the line through the last week of ``peak_points`` (the weekly
    peak over :data:`STEADY_WEEKS` weeks), with its confidence notes."""
    line = fit([p for p in peak_points if p[0] > now - WEEK])
    steady = fit(peak_points)
    notes = []
    if history_days < MIN_HISTORY_DAYS:
        notes.append(f"only {history_days:.1f} days of history: the weekly peak needs a week and its trend "
                     f"another ({MIN_HISTORY_DAYS:.0f} days)")
    if line is None:
        if history_days >= MIN_HISTORY_DAYS:
            notes.append("no weekly peak recorded (capacity:usage:p99_1w): are the capacity rules loaded?")
        peak = peak_points[-1][1] if peak_points else None
        return Forecast(resource, capacity, usage, peak, None, history_days, None, None, None, notes)
    level = line.level + line.slope * (now - line.at)
    if steady is not None and steady.scatter > MAX_SCATTER * capacity:
        notes.append(f"the weekly peak strays ±{steady.scatter / capacity:.0%} of capacity from a line over "
                     f"the last {STEADY_WEEKS} weeks (a level shift, a change of trend, or long bursts)")
    margin = 2 * line.slope_error
    if margin * WEEK > 0.01 * capacity and margin > MAX_SLOPE_UNCERTAINTY * abs(line.slope):
        notes.append(f"the trend is uncertain: {line.slope * WEEK:+.3g} ± {margin * WEEK:.3g} a week")
    crossing = _crossing(level, line.slope, capacity, now)
    earliest = _crossing(level, line.slope + margin, capacity, now)
    latest = _crossing(level, line.slope - margin, capacity, now)
    return Forecast(resource, capacity, usage, level, line.slope * WEEK, history_days, crossing, earliest,
                    latest, notes)
