"""Sixty days of synthetic capacity usage, and when each shape should reach its capacity.

Every shape is ``capacity:usage{resource="synthetic_<shape>", kind="throughput"}`` sampled every
5 minutes up to ``end``, against a capacity of 100. The daily cycle peaks at 14:00 UTC at exactly
the shape's trend, so the trend *is* the daily peak and the crossing is where the trend reaches
100 (``Shape.crossing_day``, in days after the start; the history is days 0…60).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DAYS = 60
STEP = 300  # s
CAPACITY = 100.0
DAY = 86400


def daily(t: float) -> float:
    """1.0 at 14:00 UTC, 0.4 at 02:00: the share of the day's peak in use."""
    hour = (t % DAY) / 3600
    return 0.7 + 0.3 * math.cos(2 * math.pi * (hour - 14) / 24)


def weekend(t: float) -> float:
    """0.6 on Saturdays and Sundays (UTC), 1.0 on weekdays."""
    return 0.6 if (int(t // DAY) + 3) % 7 in (5, 6) else 1.0  # 1970-01-01 was a Thursday


@dataclass(frozen=True)
class Shape:
    """One synthetic history: ``value(t, day)`` and the expected crossing (None: never, or unknown)."""

    name: str
    value: Callable[[float, float, random.Random], float]
    crossing_day: float | None
    first_day: float = 0.0  # the history starts here (the short shape)

    @property
    def resource(self) -> str:
        return f"synthetic_{self.name}"


def _bursts(seed: int = 22) -> list[tuple[float, float, float]]:
    """(first day, last day, height): one every 3-10 days, 3-10 hours long, 50-85 high.

    Bursts longer than 100 minutes are load the weekly peak keeps, so it jumps up and down with
    them. Seed 22: its last three weeks hold such jumps (as for 13 of the 21 seeds tried) while
    no two consecutive weeks tilt upwards together (the alerts' condition).
    """
    rng = random.Random(seed)
    out, day = [], rng.uniform(0, 4)
    while day < DAYS:
        out.append((day, day + rng.uniform(3, 10) / 24, rng.uniform(50, 85)))
        day += rng.uniform(3, 10)
    return out


BURSTS = _bursts()


def _noisy(t: float, day: float, rng: random.Random) -> float:
    burst = max((h for first, last, h in BURSTS if first <= day < last), default=0.0)
    return max(45 * daily(t), burst) + rng.gauss(0, 4)


SHAPES = (
    # 39 + 1.0 a day: 100 on day 61, a day after the history ends
    Shape("linear", lambda t, day, rng: (39 + 1.0 * day) * daily(t) * (1 + rng.gauss(0, 0.01)), 61.0),
    # 44 + 0.8 a day on weekdays, 60 % of it on weekends: the weekday peak reaches 100 on day 70
    Shape("weekly", lambda t, day, rng: (44 + 0.8 * day) * daily(t) * weekend(t), 70.0),
    # 30 + 0.5 a day, +25 from day 35 on (a new large customer): 55 + 0.5 a day, 100 on day 90
    Shape("step", lambda t, day, rng: (30 + 0.5 * day + (25 if day >= 35 else 0)) * daily(t), 90.0),
    # no trend, bursts of 3-10 hours to 50-85 % of the capacity every 3-10 days: no honest date
    Shape("noisy", _noisy, None),
    # 4 days of history growing 5 a day from 60: 100 on day 64, but too short to say so
    Shape("short", lambda t, day, rng: (60 + 5 * (day - 56)) * daily(t), 64.0, first_day=56.0),
)


def samples(shape: Shape, start: float, seed: int = 19) -> Iterator[tuple[float, float]]:
    """``(unix time, value)`` every :data:`STEP` seconds from ``start`` + ``first_day`` to day 60."""
    rng = random.Random(f"{seed}-{shape.name}")
    t = start + shape.first_day * DAY
    end = start + DAYS * DAY
    while t <= end:
        day = (t - start) / DAY
        yield t, max(shape.value(t, day, rng), 0.0)
        t += STEP


def openmetrics(shapes: tuple[Shape, ...], start: float) -> str:
    """The history as one OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``."""
    lines = ["# HELP capacity:usage Synthetic usage (tests/stack/capacity_synthetic.py).",
             "# TYPE capacity:usage gauge"]
    for shape in shapes:
        labels = f'{{kind="throughput",resource="{shape.resource}"}}'
        lines += [f"capacity:usage{labels} {v:.4f} {t:.0f}" for t, v in samples(shape, start)]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
