"""Load shedding: priorities, the bounded priority wait queue of a concurrency gate, and ``LoadShed``.

A caller that finds no free slot at a gate (``resilience.adaptive.AdaptiveLimiter``) waits in a
``PriorityWaitQueue``: highest priority first, FIFO within a priority, at most ``max_wait``
seconds (or its priority's entry of ``max_wait_by_priority``). Who is shed, and why (the bounded
``LoadShed.reason``, a metric label):

- ``queue_full``: the queue holds ``max_queue`` waiters and none has a lower priority than the
  newcomer; or higher-priority waiters already fill half the queue (a lower-priority caller would
  only wait ``max_wait`` to be shed);
- ``evicted``: the queue was full and a higher-priority newcomer took the place of the newest
  waiter of the lowest priority;
- ``wait_timeout``: no slot within the wait.

A shed caller gets ``LoadShed`` (which a deployable answers as 503 with ``Retry-After``; the
gateway's ``gateway.errors.LoadShed`` is this error as an ``UpstreamError``). Standard library
only: callers count sheds themselves (``LoadShed.reason``). See docs/load-shedding.md.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping

__all__ = [
    "PRIORITIES",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "RETRY_AFTER",
    "SHED_REASONS",
    "LoadShed",
    "PriorityWaitQueue",
    "priority_name",
]

PRIORITY_LOW = -1
PRIORITY_NORMAL = 0
PRIORITY_HIGH = 1
#: Config names of the priorities (route key ``priority``); higher int = more important.
PRIORITIES: Mapping[str, int] = {"low": PRIORITY_LOW, "normal": PRIORITY_NORMAL, "high": PRIORITY_HIGH}
_NAMES = {value: name for name, value in PRIORITIES.items()}
#: Every ``LoadShed.reason`` (a bounded metric label).
SHED_REASONS = ("queue_full", "wait_timeout", "evicted")
#: Seconds advertised in ``Retry-After`` on a shed request.
RETRY_AFTER = 1.0


def priority_name(priority: int) -> str:
    """``high``/``normal``/``low`` for the configured priorities (a bounded metric label)."""
    return _NAMES.get(priority, "high" if priority > PRIORITY_HIGH else "low")


class LoadShed(Exception):
    """A caller was shed by a concurrency gate (queue full, wait expired, evicted): try again later."""

    #: The problem+json answer of a shed request (``resilience.problem``), with ``Retry-After``.
    status = 503
    title = "Upstream overloaded"
    type_slug = "load-shed"

    def __init__(
        self, detail: str = "", *, retry_after: float | None = RETRY_AFTER, reason: str = "queue_full"
    ) -> None:
        super().__init__(detail or "shed")
        self.detail = detail or "shed"
        #: Seconds a client should wait before trying again (``Retry-After``).
        self.retry_after = retry_after
        #: Why: one of ``SHED_REASONS`` (the metric label).
        self.reason = reason


#: Builds the error of one shed: ``(reason, why)`` → the exception the waiter gets.
ShedError = Callable[[str, str], LoadShed]


class PriorityWaitQueue:
    """Callers waiting for a slot of one gate, by priority; decides who is shed (see the module doc).

    The gate calls ``wait(priority)`` when it has no free slot, and ``pop()`` to hand a freed
    slot to the next waiter (``set_result(start_time)`` on the returned future). ``count`` is the
    number of waiters (read on the gate's hot path). ``shed(reason, why)`` builds the error a shed
    waiter gets; ``pass_on()`` is called when a waiter is cancelled just after a slot was handed
    to it, so the slot goes to the next one.
    """

    __slots__ = ("_by_priority", "_order", "count", "max_queue", "max_wait", "max_wait_by_priority",
                 "pass_on", "shed")

    def __init__(
        self,
        *,
        max_queue: int,
        max_wait: float,
        max_wait_by_priority: Mapping[int, float] | None = None,
        shed: ShedError,
        pass_on: Callable[[], None],
    ) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        if not max_wait > 0 or not all(w > 0 for w in (max_wait_by_priority or {}).values()):
            raise ValueError("max_wait must be > 0")
        self.max_queue = max_queue
        self.max_wait = max_wait
        #: Per-priority waits overriding ``max_wait``.
        self.max_wait_by_priority: dict[int, float] = dict(max_wait_by_priority or {})
        self.shed = shed
        self.pass_on = pass_on
        #: Callers waiting (cancelled ones leave at once; a handed-over one when ``pop`` reaches it).
        self.count = 0
        self._by_priority: dict[int, deque[asyncio.Future[float]]] = {}
        self._order: list[int] = []  # keys of _by_priority, highest first

    async def wait(self, priority: int) -> float:
        """Wait for a slot (raises ``LoadShed`` when shed); the start time the gate handed over.

        A cancelled caller leaves the queue, or passes on a slot handed to it meanwhile.
        """
        self._make_room(priority)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[float] = loop.create_future()
        queue = self._by_priority.get(priority)
        if queue is None:
            queue = self._add_priority(priority)
        queue.append(waiter)
        self.count += 1
        wait = self.max_wait_by_priority.get(priority, self.max_wait)
        timer = loop.call_later(wait, self._expire, waiter, queue, wait)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled() or not waiter.done():
                self._forget(waiter, queue)
            elif waiter.exception() is None:
                self.pass_on()  # a slot was handed over just as we were cancelled: pass it on
            raise
        finally:
            timer.cancel()

    def pop(self) -> asyncio.Future[float]:
        """Remove and return the highest-priority, oldest waiter (it may be done: cancelled, shed)."""
        for priority in self._order:
            queue = self._by_priority[priority]
            if queue:
                self.count -= 1
                return queue.popleft()
        raise AssertionError("queued count out of sync")  # pragma: no cover - count and queues disagree

    def _make_room(self, priority: int) -> None:
        """Shed the newcomer, or evict a lower-priority waiter so it fits (see the module doc)."""
        if self.count >= self.max_queue:
            for lower in reversed(self._order):
                if lower >= priority:
                    break
                queue = self._by_priority[lower]
                while queue:
                    victim = queue.pop()  # the newest: it has waited least
                    self.count -= 1
                    if not victim.done():
                        victim.set_exception(self.shed("evicted", "evicted by a higher-priority request"))
                        return
            raise self.shed("queue_full", f"wait queue full ({self.count} waiting)")
        above = sum(len(self._by_priority[p]) for p in self._order if p > priority)
        if above and above * 2 >= self.max_queue:
            raise self.shed("queue_full", f"{above} higher-priority requests waiting")

    def _expire(self, waiter: asyncio.Future[float], queue: deque[asyncio.Future[float]],
                wait: float) -> None:
        if not waiter.done():
            self._forget(waiter, queue)
            waiter.set_exception(self.shed("wait_timeout", f"no slot within {wait:g}s"))

    def _forget(self, waiter: asyncio.Future[float], queue: deque[asyncio.Future[float]]) -> None:
        try:
            queue.remove(waiter)
        except ValueError:
            return
        self.count -= 1

    def _add_priority(self, priority: int) -> deque[asyncio.Future[float]]:
        queue: deque[asyncio.Future[float]] = deque()
        self._by_priority[priority] = queue
        self._order = sorted(self._by_priority, reverse=True)
        return queue
