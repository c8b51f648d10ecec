"""A pricing worker's liveness and readiness, for its probes (``/healthz``, ``/readyz``).

The worker's HTTP side is the metrics server's thread, which answers even when the event loop that
prices and delivers is stuck; so the loop itself stamps the time (:meth:`WorkerHealth.watch_loop`)
and the checks, called on that thread, only compare stamps with the clock:

* **live** while the loop stamped within ``stall_after`` seconds — a loop blocked that long prices
  nothing and hands nothing back on SIGTERM: restart it;
* **ready** while its last heartbeat to Redis (every 5 s) succeeded within ``stale_after`` seconds —
  without Redis it can take no job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from telemetry.metrics import HealthCheck

__all__ = ["WorkerHealth"]


class WorkerHealth:
    """Stamps kept by the worker's loop, read by its probes."""

    def __init__(self, *, stall_after: float = 15.0, stale_after: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if stall_after <= 0 or stale_after <= 0:
            raise ValueError("stall_after and stale_after must be > 0")
        self._stall_after, self._stale_after, self._clock = stall_after, stale_after, clock
        self._loop_stamp = clock()
        self._heartbeat_stamp: float | None = None

    def loop_ticked(self) -> None:
        self._loop_stamp = self._clock()

    def heartbeat_succeeded(self) -> None:
        self._heartbeat_stamp = self._clock()

    async def watch_loop(self, stop: asyncio.Event, period: float = 1.0) -> None:
        """Stamp the loop every ``period`` seconds until ``stop``."""
        while not stop.is_set():
            self.loop_ticked()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    def liveness(self) -> str | None:
        stalled = self._clock() - self._loop_stamp
        if stalled > self._stall_after:
            return f"event loop stalled for {stalled:.0f} s (> {self._stall_after:.0f} s)"
        return None

    def readiness(self) -> str | None:
        if self._heartbeat_stamp is None:
            return "no heartbeat to Redis yet"
        age = self._clock() - self._heartbeat_stamp
        if age > self._stale_after:
            return f"last heartbeat to Redis {age:.0f} s ago (> {self._stale_after:.0f} s)"
        return self.liveness()

    def checks(self) -> dict[str, HealthCheck]:
        """The probe paths for :func:`telemetry.metrics.start_metrics_server`."""
        return {"/healthz": self.liveness, "/readyz": self.readiness}
