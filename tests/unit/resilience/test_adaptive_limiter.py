"""AdaptiveLimiter: fast-path admission, the priority wait queue, shedding and sample windows."""

from __future__ import annotations

import asyncio

import pytest

from resilience.adaptive import AdaptiveLimiter, GradientLimit
from resilience.shedding import PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NORMAL, LoadShed


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _limiter(limit: int = 1, *, max_queue: int = 10, max_wait: float = 5.0) -> AdaptiveLimiter:
    algorithm = GradientLimit(initial_limit=limit, min_limit=1, max_limit=max(limit, 8))
    return AdaptiveLimiter(algorithm, max_queue=max_queue, max_wait=max_wait, name="unit")


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_free_slot_is_taken_without_suspending() -> None:
    limiter = _limiter(2)
    coro = limiter.acquire()
    with pytest.raises(StopIteration) as done:
        coro.send(None)  # completes on the first step: no await on the fast path
    assert isinstance(done.value.value, float)
    assert limiter.try_acquire() is not None
    assert limiter.in_flight == 2
    assert limiter.try_acquire() is None


async def test_waiters_are_admitted_high_priority_first_then_fifo() -> None:
    limiter = _limiter(1)
    started = await limiter.acquire()
    order: list[str] = []

    async def wait(name: str, priority: int) -> None:
        at = await limiter.acquire(priority)
        order.append(name)
        limiter.release(at, dropped=False)

    tasks = [asyncio.create_task(wait(n, p)) for n, p in
             [("low", PRIORITY_LOW), ("normal-1", PRIORITY_NORMAL), ("high", PRIORITY_HIGH),
              ("normal-2", PRIORITY_NORMAL)]]
    await _settle()
    assert limiter.queued == 4
    limiter.release(started, dropped=False)
    async with asyncio.timeout(2):
        await asyncio.gather(*tasks)
    assert order == ["high", "normal-1", "normal-2", "low"]
    assert (limiter.in_flight, limiter.queued) == (0, 0)


async def test_a_high_priority_request_evicts_the_newest_lower_priority_waiter_when_full() -> None:
    limiter = _limiter(1, max_queue=3)
    await limiter.acquire()
    old_low = asyncio.create_task(limiter.acquire(PRIORITY_LOW))
    normal = asyncio.create_task(limiter.acquire(PRIORITY_NORMAL))
    new_low = asyncio.create_task(limiter.acquire(PRIORITY_LOW))
    await _settle()
    high = asyncio.create_task(limiter.acquire(PRIORITY_HIGH))
    await _settle()
    with pytest.raises(LoadShed) as shed:
        await asyncio.wait_for(new_low, 1)
    assert shed.value.reason == "evicted"
    assert shed.value.status == 503
    assert shed.value.retry_after is not None
    assert not old_low.done()
    assert not normal.done()
    assert limiter.queued == 3
    for task in (old_low, normal, high):
        task.cancel()
    await asyncio.gather(old_low, normal, high, return_exceptions=True)
    assert limiter.queued == 0


async def test_a_full_queue_sheds_a_newcomer_without_a_lower_priority_victim_at_once() -> None:
    limiter = _limiter(1, max_queue=2)
    await limiter.acquire()
    waiters = [asyncio.create_task(limiter.acquire(PRIORITY_HIGH)) for _ in range(2)]
    await _settle()
    for priority in (PRIORITY_HIGH, PRIORITY_NORMAL):
        with pytest.raises(LoadShed) as shed:
            async with asyncio.timeout(1):
                await limiter.acquire(priority)
        assert shed.value.reason == "queue_full"
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)


async def test_lower_priority_is_shed_early_once_higher_waiters_fill_half_the_queue() -> None:
    limiter = _limiter(1, max_queue=4)
    await limiter.acquire()
    first_high = asyncio.create_task(limiter.acquire(PRIORITY_HIGH))
    await _settle()
    normal = asyncio.create_task(limiter.acquire(PRIORITY_NORMAL))  # 1 high of 4: still queues
    await _settle()
    assert not normal.done()
    second_high = asyncio.create_task(limiter.acquire(PRIORITY_HIGH))
    await _settle()
    with pytest.raises(LoadShed) as shed:
        await limiter.acquire(PRIORITY_LOW)  # 2 high of 4: the low one would only wait to be shed
    assert shed.value.reason == "queue_full"
    assert limiter.queued == 3
    for task in (first_high, normal, second_high):
        task.cancel()
    await asyncio.gather(first_high, normal, second_high, return_exceptions=True)


async def test_a_waiter_is_shed_after_max_wait() -> None:
    limiter = _limiter(1, max_wait=0.05)
    await limiter.acquire()
    with pytest.raises(LoadShed) as shed:
        async with asyncio.timeout(2):
            await limiter.acquire(PRIORITY_HIGH)
    assert shed.value.reason == "wait_timeout"
    assert (limiter.in_flight, limiter.queued) == (1, 0)


async def test_operators_may_wait_longer_than_partners() -> None:
    limiter = AdaptiveLimiter(GradientLimit(initial_limit=1, min_limit=1, max_limit=1), max_queue=10,
                              max_wait=0.05, max_wait_by_priority={PRIORITY_HIGH: 5.0}, name="unit")
    started = await limiter.acquire()
    operator = asyncio.create_task(limiter.acquire(PRIORITY_HIGH))
    with pytest.raises(LoadShed, match=r"no slot within 0.05s") as shed:
        await asyncio.wait_for(limiter.acquire(PRIORITY_NORMAL), 2)
    assert shed.value.reason == "wait_timeout"
    await asyncio.sleep(0.2)  # four times the partners' wait: the operator still waits
    assert not operator.done()
    limiter.release(started, dropped=False)
    assert await asyncio.wait_for(operator, 2) > 0
    assert (limiter.in_flight, limiter.queued) == (1, 0)


async def test_release_accounting_never_goes_negative() -> None:
    limiter = _limiter(2)
    started = await limiter.acquire()
    limiter.release(started, dropped=False)
    limiter.release(started, dropped=False)
    limiter.release(started, dropped=True, sample=False)
    assert limiter.in_flight == 0
    assert limiter.try_acquire() is not None
    assert limiter.try_acquire() is not None
    assert limiter.try_acquire() is None


async def test_a_cancelled_waiter_leaves_the_queue_without_leaking_a_slot() -> None:
    limiter = _limiter(1)
    started = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.queued == 0
    limiter.release(started, dropped=False)
    assert limiter.in_flight == 0
    assert limiter.try_acquire() is not None


async def test_a_waiter_cancelled_right_after_the_handover_passes_the_slot_on() -> None:
    limiter = _limiter(1)
    started = await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await _settle()
    limiter.release(started, dropped=False)  # hands the slot to ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(1):
        at = await second
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    limiter.release(at, dropped=False)
    assert limiter.in_flight == 0


async def test_slow_windows_lower_the_limit_and_fast_windows_raise_it() -> None:
    clock = FakeClock()
    algorithm = GradientLimit(initial_limit=4, min_limit=1, max_limit=8)
    limiter = AdaptiveLimiter(algorithm, max_queue=10, max_wait=5.0, sample_window=1.0, min_samples=4,
                              clock=clock)

    def window(rtt: float) -> None:
        """One window of 4 rounds at full concurrency, each call taking ``rtt``."""
        for _ in range(4):
            starts = [limiter.try_acquire() for _ in range(limiter.limit)]
            clock.now += rtt
            for at in starts:
                assert at is not None
                limiter.release(at, dropped=False)
        clock.now += 1.0

    for _ in range(12):
        window(0.010)
    assert limiter.limit == 8
    for _ in range(15):
        window(0.100)
    assert limiter.limit < 4
    for _ in range(40):
        window(0.010)
    assert limiter.limit == 8


async def test_a_growing_limit_admits_queued_waiters() -> None:
    clock = FakeClock()
    algorithm = GradientLimit(initial_limit=2, min_limit=1, max_limit=8, smoothing=1.0)
    limiter = AdaptiveLimiter(algorithm, max_queue=10, sample_window=1.0, min_samples=1, clock=clock)
    held = [limiter.try_acquire(), limiter.try_acquire()]
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
    await _settle()
    assert limiter.queued == 3
    first = held.pop()
    assert first is not None
    clock.now += 1.0
    limiter.release(first, dropped=False, rtt=0.010)  # opens the first window: a plain handover
    assert (limiter.limit, limiter.queued) == (2, 2)
    second = held.pop()
    assert second is not None
    clock.now += 1.0
    limiter.release(second, dropped=False, rtt=0.010)  # closes it: limit 2 -> 3, two waiters admitted
    assert limiter.limit == 3
    assert (limiter.in_flight, limiter.queued) == (3, 0)
    async with asyncio.timeout(1):
        await asyncio.gather(*waiters)


async def test_a_window_with_many_drops_lowers_the_limit() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(GradientLimit(initial_limit=8, max_limit=8), sample_window=1.0,
                              min_samples=4, clock=clock)
    for _ in range(3):
        starts = [limiter.try_acquire() for _ in range(limiter.limit)]
        clock.now += 0.001  # fast refusals
        for at in starts:
            assert at is not None
            limiter.release(at, dropped=True)
        clock.now += 1.0
    assert limiter.limit < 8
