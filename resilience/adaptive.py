"""Adaptive concurrency: a gradient limit algorithm and an asyncio gate that follows it.

``GradientLimit`` is the pure algorithm (no asyncio, no clock): feed it latency
samples, read ``limit``. ``AdaptiveLimiter`` admits up to ``limit`` concurrent
calls, parks the next ``max_queue`` callers for at most ``max_wait`` seconds in a
priority wait queue (``resilience.shedding``: who waits, who is shed with
``LoadShed``), and feeds one aggregated sample per ``sample_window`` to the algorithm.

Usage (the gateway's clusters and the sidecar's CRM→MES relay)::

    limiter = AdaptiveLimiter(GradientLimit(initial_limit=20, max_limit=200), max_wait=0.2)
    started = await limiter.acquire(PRIORITY_HIGH)      # raises LoadShed when shed
    try:
        ...call the MES...
    finally:
        limiter.release(started, dropped=failed_or_timed_out)

Imports only the standard library and ``resilience.shedding`` (no aiohttp, no metrics):
callers count sheds (``LoadShed.reason``) and publish ``limit``/``queued`` themselves.
See docs/load-shedding.md for the algorithm and the priority policy.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping

from resilience.shedding import PRIORITY_NORMAL, RETRY_AFTER, LoadShed, PriorityWaitQueue

__all__ = ["AdaptiveLimiter", "GradientLimit"]

#: A sample can cut the limit by at most half (Gradient2), so one outlier cannot collapse it.
MIN_GRADIENT = 0.5
#: Samples averaged into the long-term RTT before it becomes an EWMA.
WARMUP_SAMPLES = 10
#: The long-term RTT is an EWMA over about this many samples (Gradient2's default ``longWindow``).
LONG_WINDOW = 600
#: Quantised clocks (uvloop's ``time()`` ticks in ms) give 0 s samples; never divide by them.
RTT_FLOOR = 1e-4
#: A window whose share of dropped calls reaches this counts as one drop sample.
DROP_SHARE = 0.1


class GradientLimit:
    """Netflix Gradient2-style limit: shrink when RTT rises above its long-term average.

    Each sample compares its RTT with a slow EWMA of past RTTs (``long_rtt``)::

        gradient = clamp(tolerance * long_rtt / rtt, 0.5, 1.0)
        target   = limit * gradient                    # slower than tolerated: shrink
                   or limit + sqrt(limit)              # within tolerance: probe upward
        limit    = limit * (1 - smoothing) + target * smoothing, clamped to [min_limit, max_limit]

    RTT within ``tolerance`` x the baseline grows the limit by ``smoothing * sqrt(limit)``;
    slower RTT pulls it down, by at most ``smoothing / 2`` per sample. Unlike Gradient2
    the sqrt headroom is not added while shrinking (it would hold the limit at >= 4
    however slow the endpoint gets). The limit does not grow while the caller is
    app-limited (``in_flight < limit / 2``): idle capacity proves nothing. A ``dropped``
    sample (timeout, refusal, 503) is the strongest overload signal: it counts as
    gradient 0.5 and its RTT does not touch the baseline.
    """

    __slots__ = ("_estimate", "_long_rtt", "_samples", "max_limit", "min_limit", "smoothing", "tolerance")

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 1,
        max_limit: int = 200,
        smoothing: float = 0.2,
        tolerance: float = 1.5,
    ) -> None:
        if not 1 <= min_limit <= initial_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= initial_limit <= max_limit")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1]")
        if not tolerance >= 1.0:
            raise ValueError("tolerance must be >= 1")
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.smoothing = smoothing
        self.tolerance = tolerance
        self._estimate = float(initial_limit)
        self._long_rtt = 0.0
        self._samples = 0

    @property
    def limit(self) -> int:
        """The current concurrency limit."""
        return int(self._estimate)

    @property
    def long_rtt(self) -> float:
        """The baseline RTT in seconds (0.0 before the first non-dropped sample)."""
        return self._long_rtt

    def on_sample(self, rtt: float, *, in_flight: int, dropped: bool) -> int:
        """Feed one RTT sample (seconds) seen with ``in_flight`` calls running; returns the new limit."""
        limit = self._estimate
        if dropped:
            target = limit * MIN_GRADIENT
        else:
            rtt = max(rtt, RTT_FLOOR)
            long_rtt = self._update_long_rtt(rtt)
            gradient = self.tolerance * long_rtt / rtt
            if gradient < 1.0:
                target = limit * max(MIN_GRADIENT, gradient)
            elif in_flight * 2 >= limit:
                target = limit + math.sqrt(limit)
            else:
                return int(limit)  # healthy but app-limited: nothing learned
        limit += (target - limit) * self.smoothing
        self._estimate = min(float(self.max_limit), max(float(self.min_limit), limit))
        return int(self._estimate)

    def _update_long_rtt(self, rtt: float) -> float:
        self._samples += 1
        n = self._samples
        if n <= WARMUP_SAMPLES:
            self._long_rtt += (rtt - self._long_rtt) / n
        else:
            self._long_rtt += (rtt - self._long_rtt) * (2.0 / (LONG_WINDOW + 1))
        if self._long_rtt > 2.0 * rtt:
            # Latency is back to normal after long overload: let the baseline come down
            # faster than the EWMA would, or the limit would stay high for minutes.
            self._long_rtt *= 0.95
        return self._long_rtt

    def __repr__(self) -> str:
        return f"GradientLimit(limit={self._estimate:.1f}, long_rtt={self._long_rtt * 1000:.2f}ms)"


class AdaptiveLimiter:
    """Concurrency gate following a ``GradientLimit``, with a bounded priority wait queue.

    Admission: a free slot is taken synchronously (``try_acquire``, the hot path).
    Otherwise the caller waits in a ``PriorityWaitQueue`` at most ``max_wait`` seconds (or its
    priority's entry in ``max_wait_by_priority``: operators may wait longer than partners);
    waiters are admitted highest priority first, FIFO within a priority, and shed as
    ``resilience.shedding`` describes: ``shed_error`` (``LoadShed`` or a subclass of the
    caller's, e.g. the gateway's 503 ``UpstreamError``) with ``.reason``.

    Samples are aggregated per ``sample_window`` seconds (and at least ``min_samples``
    calls): the mean RTT of the calls that did not drop, the window's peak in-flight
    count, and "dropped" if ``DROP_SHARE`` of the calls dropped.
    """

    __slots__ = (
        "_algorithm", "_cap", "_clock", "_in_flight", "_shed_error", "_waiting",
        "_win_drops", "_win_max_in_flight", "_win_ok", "_win_rtt", "_win_start",
        "min_samples", "name", "sample_window",
    )

    def __init__(
        self,
        limit: GradientLimit,
        *,
        max_queue: int = 50,
        max_wait: float = 0.2,
        max_wait_by_priority: Mapping[int, float] | None = None,
        name: str = "",
        sample_window: float = 1.0,
        min_samples: int = 10,
        clock: Callable[[], float] | None = None,
        shed_error: type[LoadShed] = LoadShed,
    ) -> None:
        if not sample_window > 0 or min_samples < 1:
            raise ValueError("sample_window must be > 0 and min_samples >= 1")
        self._algorithm = limit
        self._waiting = PriorityWaitQueue(max_queue=max_queue, max_wait=max_wait,
                                          max_wait_by_priority=max_wait_by_priority,
                                          shed=self._shed, pass_on=self._give_back)
        self._shed_error = shed_error
        self.name = name
        self.sample_window = sample_window
        self.min_samples = min_samples
        #: Defaults to the running loop's ``time()`` (what deadlines are measured in).
        self._clock = clock
        self._cap = limit.limit
        self._in_flight = 0
        self._win_start: float | None = None
        self._win_rtt = 0.0
        self._win_ok = 0
        self._win_drops = 0
        self._win_max_in_flight = 0

    # ------------------------------------------------------------ state

    @property
    def in_flight(self) -> int:
        """Calls admitted and not yet released."""
        return self._in_flight

    @property
    def limit(self) -> int:
        """The algorithm's current concurrency limit."""
        return self._cap

    @property
    def queued(self) -> int:
        """Callers waiting for a slot."""
        return self._waiting.count

    @property
    def max_queue(self) -> int:
        """Waiters the queue holds before it sheds."""
        return self._waiting.max_queue

    @property
    def max_wait(self) -> float:
        """Seconds a caller waits for a slot (unless its priority has its own wait)."""
        return self._waiting.max_wait

    @property
    def max_wait_by_priority(self) -> dict[int, float]:
        """Per-priority waits overriding ``max_wait``."""
        return self._waiting.max_wait_by_priority

    @property
    def algorithm(self) -> GradientLimit:
        """The limit algorithm this gate follows."""
        return self._algorithm

    def now(self) -> float:
        """The clock ``acquire`` returns and ``release`` measures with."""
        clock = self._clock
        if clock is None:
            clock = self._clock = asyncio.get_running_loop().time
        return clock()

    # ------------------------------------------------------------ admission

    def try_acquire(self) -> float | None:
        """Take a free slot without waiting (the hot path); the start time, or None if none is free."""
        n = self._in_flight
        if n < self._cap and not self._waiting.count:
            self._in_flight = n = n + 1
            if n > self._win_max_in_flight:
                self._win_max_in_flight = n
            return self.now()
        return None

    async def acquire(self, priority: int = PRIORITY_NORMAL) -> float:
        """Wait (bounded by ``max_wait``) for a slot; returns the start time, raises ``LoadShed``.

        Higher ``priority`` is more important (``PRIORITY_HIGH``/``NORMAL``/``LOW``). A
        cancelled caller leaves the queue, or passes on a slot handed to it meanwhile.
        """
        started = self.try_acquire()
        if started is not None:
            return started
        return await self._waiting.wait(priority)

    def release(
        self, started: float, *, dropped: bool, rtt: float | None = None, sample: bool = True
    ) -> None:
        """Return a slot; the call's RTT (``now - started`` unless ``rtt`` is given) becomes a sample.

        ``dropped``: the call failed in a way that signals overload (timeout, refused,
        502/503/504). ``sample=False`` releases without a sample (e.g. the client went
        away). A release without a matching acquire is ignored: ``in_flight`` never
        goes negative.
        """
        if self._in_flight <= 0:
            return
        if sample:
            now = self.now()
            self._record(now - started if rtt is None else rtt, dropped, now)
        self._give_back()

    # ------------------------------------------------------------ internals

    def _give_back(self) -> None:
        self._in_flight -= 1
        if self._waiting.count:
            self._wake()

    def _wake(self) -> None:
        """Hand free slots to the highest-priority, oldest waiters."""
        now: float | None = None
        waiting = self._waiting
        while waiting.count and self._in_flight < self._cap:
            waiter = waiting.pop()
            if waiter.done():  # cancelled; its task has not run its cleanup yet
                continue
            if now is None:
                now = self.now()
            self._in_flight += 1
            if self._in_flight > self._win_max_in_flight:
                self._win_max_in_flight = self._in_flight
            waiter.set_result(now)

    def _shed(self, reason: str, why: str) -> LoadShed:
        return self._shed_error(
            f"{self.name or 'limiter'}: shed ({why}); limit {self._cap}, {self._in_flight} in flight",
            retry_after=RETRY_AFTER,
            reason=reason,
        )

    def _record(self, rtt: float, dropped: bool, now: float) -> None:
        """Add one call to the current window; close the window into one algorithm sample when due."""
        if dropped:
            self._win_drops += 1
        else:
            self._win_rtt += rtt
            self._win_ok += 1
        if self._win_start is None:
            self._win_start = now
            return
        count = self._win_ok + self._win_drops
        if now - self._win_start < self.sample_window or count < self.min_samples:
            return
        window_dropped = self._win_drops >= count * DROP_SHARE or not self._win_ok
        mean_rtt = self._win_rtt / self._win_ok if self._win_ok else 0.0
        self._cap = self._algorithm.on_sample(
            mean_rtt, in_flight=self._win_max_in_flight, dropped=window_dropped
        )
        self._win_start = now
        self._win_rtt = 0.0
        self._win_ok = self._win_drops = 0
        self._win_max_in_flight = self._in_flight

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter({self.name!r}, limit={self._cap}, in_flight={self._in_flight}, "
            f"queued={self.queued})"
        )
