"""Sampled logging for events an outsider can trigger at will (refused keys, throttled addresses).

The first ``lines`` events of a kind in each ``interval`` are logged; the rest are only counted,
and when the interval ends one summary line reports how many were left out. A flood therefore
writes at most ``lines + 1`` lines per kind and interval, while metrics still count every
event. Kinds must be a small fixed set (reasons), never client input.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable


class _Interval:
    __slots__ = ("logged", "start", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.logged = 0
        self.suppressed = 0


class LogSampler:
    """``allow(kind)`` → log this one?; ``summary(kind, suppressed, interval)`` is called after."""

    def __init__(self, *, lines: int, interval: float, summary: Callable[[str, int, float], None]) -> None:
        self.lines = lines
        self.interval = interval
        self._summary = summary
        self._current: dict[str, _Interval] = {}

    def allow(self, kind: str) -> bool:
        now = time.monotonic()
        current = self._current.get(kind)
        if current is None or now - current.start >= self.interval:
            current = self._current[kind] = _Interval(now)
        if current.logged < self.lines:
            current.logged += 1
            return True
        current.suppressed += 1
        if current.suppressed == 1:  # one timer per interval that suppressed anything
            asyncio.get_running_loop().call_later(  # own context: not the request id of this event
                current.start + self.interval - now, self._report, kind, current,
                context=contextvars.Context())
        return False

    def _report(self, kind: str, interval: _Interval) -> None:
        self._summary(kind, interval.suppressed, self.interval)
