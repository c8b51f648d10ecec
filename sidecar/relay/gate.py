"""When to stop sending orders to the MES, and when to try again: a circuit breaker for one consumer.

``closed`` (deliver) → ``failure_threshold`` consecutive failures → ``open`` (paused: nothing is
sent for ``backoff`` seconds) → ``half_open`` (exactly one delivery, the probe) → success:
``closed``, backoff reset; failure: ``open`` again with the backoff doubled (up to ``backoff_max``).
A ``Retry-After`` from the MES lengthens the pause, never shortens it.

Only the relay's dispatcher waits on the gate, so it needs no queue of its own. Results of
deliveries that were already in flight when the gate opened do not close it: only the probe does.
"""

from __future__ import annotations

import asyncio
import enum
import time


class GateState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class PauseGate:
    """Consecutive-failure breaker with exponential backoff and a single half-open probe."""

    def __init__(self, *, failure_threshold: int, backoff_initial: float, backoff_max: float) -> None:
        self.failure_threshold = failure_threshold
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.state = GateState.CLOSED
        self.failures = 0  # consecutive, while closed
        self.backoff = backoff_initial  # the length of the current (or next) pause
        self._resume_at = 0.0

    @property
    def paused(self) -> bool:
        """True while open or probing: the relay does not take new work from the queue."""
        return self.state is not GateState.CLOSED

    def seconds_until_probe(self) -> float:
        """How long the current pause still lasts (0 when closed or probing)."""
        if self.state is not GateState.OPEN:
            return 0.0
        return max(0.0, self._resume_at - time.monotonic())

    def on_success(self) -> None:
        """A delivery the MES confirmed (or definitively rejected: it answered)."""
        if self.state is GateState.CLOSED:
            self.failures = 0

    def on_failure(self, *, retry_after: float | None = None) -> bool:
        """A delivery that failed (5xx, 429, timeout, connection); True if this opened the gate."""
        if self.state is not GateState.CLOSED:
            return False  # in flight before the pause: the probe decides
        self.failures += 1
        if self.failures < self.failure_threshold:
            return False
        self._open(retry_after)
        return True

    def begin_probe(self) -> None:
        """The pause is over: the next delivery is the probe."""
        if self.state is GateState.OPEN:
            self.state = GateState.HALF_OPEN

    def probe_result(self, ok: bool, *, retry_after: float | None = None) -> None:
        """Close the gate after a good probe; reopen with a doubled backoff after a bad one."""
        if self.state is not GateState.HALF_OPEN:
            return
        if ok:
            self.state, self.failures, self.backoff = GateState.CLOSED, 0, self.backoff_initial
        else:
            self.backoff = min(self.backoff * 2, self.backoff_max)
            self._open(retry_after)

    async def wait_for_probe(self) -> None:
        """Sleep until the pause is over, then switch to probing."""
        await asyncio.sleep(self.seconds_until_probe())  # nothing moves the deadline while open
        self.begin_probe()

    def _open(self, retry_after: float | None) -> None:
        self.state = GateState.OPEN
        pause = max(self.backoff, min(retry_after or 0.0, self.backoff_max))
        self._resume_at = time.monotonic() + pause
