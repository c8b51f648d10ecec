"""Load shapes (Locust ``LoadTestShape``), every one bounded in time.

``users`` is the normal level of ``mix.yaml``/``$LOADTEST_USERS``; the locustfile exposes the
one named by ``$LOADTEST_SHAPE`` (Locust uses the first shape class it finds in a locustfile).

* ``normal`` — ramp to ``users`` over ``ramp`` s, hold until ``duration``;
* ``peak``   — the same at 2x ``users`` (the sizing case of the capacity report);
* ``spike``  — ``users``, then ``spike_factor``x within 2 s at ``spike_at`` for ``spike_length``
  s, back to ``users`` until ``duration`` (does the platform recover?);
* ``smoke``  — ``smoke_users`` for ``smoke_duration`` s (``make test``).
"""

from __future__ import annotations

import time

from locust import LoadTestShape

from loadtests.settings import ShapeSettings, settings


def _ramp_rate(users: int, ramp: float) -> float:
    return max(users / ramp, 1.0) if ramp > 0 else float(users)


class NormalShape(LoadTestShape):
    """A steady level after a ramp."""

    factor = 1.0

    @property
    def cfg(self) -> ShapeSettings:
        return settings().shapes

    def elapsed(self) -> float:
        """Seconds since the shape started (``get_run_time``, typed)."""
        return time.perf_counter() - float(self.start_time)

    def level(self) -> int:
        return max(1, round(self.cfg.users * self.factor))

    def tick(self) -> tuple[int, float] | None:
        if self.elapsed() >= self.cfg.duration:
            return None
        return self.level(), _ramp_rate(self.level(), self.cfg.ramp)


class PeakShape(NormalShape):
    """The 2x peak: twice the normal level, held."""

    factor = 2.0


class SpikeShape(NormalShape):
    """A sudden jump to ``spike_factor`` x the normal level and back."""

    def tick(self) -> tuple[int, float] | None:
        t, cfg = self.elapsed(), self.cfg
        if t >= cfg.duration:
            return None
        if cfg.spike_at <= t < cfg.spike_at + cfg.spike_length:
            spike = max(1, round(cfg.users * cfg.spike_factor))
            return spike, max(spike / 2.0, 1.0)
        return cfg.users, _ramp_rate(cfg.users, cfg.ramp) if t < cfg.spike_at else float(cfg.users)


class SmokeShape(NormalShape):
    """A handful of users for a few seconds: every scenario and endpoint gets exercised."""

    def tick(self) -> tuple[int, float] | None:
        if self.elapsed() >= self.cfg.smoke_duration:
            return None
        return self.cfg.smoke_users, float(self.cfg.smoke_users)


SHAPES: dict[str, type[NormalShape]] = {"normal": NormalShape, "peak": PeakShape, "spike": SpikeShape,
                                        "smoke": SmokeShape}

