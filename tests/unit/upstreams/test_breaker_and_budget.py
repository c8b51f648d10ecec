"""Circuit breaker admission and the retry budget."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.errors import CircuitOpen
from gateway.upstreams.breaker import CircuitBreaker
from gateway.upstreams.config import BreakerConfig, RetryBudgetConfig
from gateway.upstreams.retry_budget import RetryBudget


def _rejections(cluster: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "gateway_circuit_breaker_rejections_total", {"cluster": cluster, "reason": reason}
    )
    return value or 0.0


async def test_breaker_admits_up_to_max_requests_then_rejects_at_once() -> None:
    breaker = CircuitBreaker("unit-breaker-a", BreakerConfig(max_requests=2, max_pending=0))
    assert breaker.try_acquire()
    assert breaker.try_acquire()
    assert not breaker.try_acquire()
    with pytest.raises(CircuitOpen) as info:
        await breaker.wait()
    assert info.value.status == 503
    assert info.value.retry_after == 1.0
    assert _rejections("unit-breaker-a", "max_requests") == 1.0
    breaker.release()
    assert breaker.try_acquire()


async def test_breaker_queues_up_to_max_pending_in_fifo_order() -> None:
    breaker = CircuitBreaker("unit-breaker-b", BreakerConfig(max_requests=1, max_pending=2))
    assert breaker.try_acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await breaker.wait()
        order.append(name)

    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(0)  # let both enqueue
    assert breaker.pending == 2
    with pytest.raises(CircuitOpen):
        await breaker.wait()
    assert _rejections("unit-breaker-b", "max_pending") == 1.0
    breaker.release()
    await asyncio.wait_for(first, 1)
    assert not second.done()
    breaker.release()
    await asyncio.wait_for(second, 1)
    assert order == ["first", "second"]
    assert breaker.in_flight == 1


async def test_cancelled_waiter_leaves_the_queue_without_leaking_a_slot() -> None:
    breaker = CircuitBreaker("unit-breaker-c", BreakerConfig(max_requests=1, max_pending=1))
    assert breaker.try_acquire()
    task = asyncio.create_task(breaker.wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.pending == 0
    breaker.release()
    assert breaker.in_flight == 0
    assert breaker.try_acquire()


async def test_wait_idle_returns_when_the_last_request_finishes() -> None:
    breaker = CircuitBreaker("unit-breaker-d", BreakerConfig(max_requests=5))
    breaker.try_acquire()
    idle = asyncio.create_task(breaker.wait_idle())
    await asyncio.sleep(0)
    assert not idle.done()
    breaker.release()
    await asyncio.wait_for(idle, 1)


def test_retry_budget_allows_min_concurrency_when_idle() -> None:
    budget = RetryBudget(RetryBudgetConfig(budget_percent=20.0, min_retry_concurrency=3))
    assert [budget.try_acquire(active_requests=1) for _ in range(4)] == [True, True, True, False]
    budget.release()
    assert budget.try_acquire(active_requests=1)


def test_retry_budget_scales_with_active_requests() -> None:
    budget = RetryBudget(RetryBudgetConfig(budget_percent=20.0, min_retry_concurrency=3))
    granted = sum(budget.try_acquire(active_requests=100) for _ in range(50))
    assert granted == 20
    assert budget.limit(10) == 3.0


def test_zero_budget_refuses_every_retry() -> None:
    budget = RetryBudget(RetryBudgetConfig(budget_percent=0.0, min_retry_concurrency=0))
    assert not budget.try_acquire(active_requests=1000)
