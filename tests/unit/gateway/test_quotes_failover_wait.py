"""A quote step waits out a Redis failover (bounded), and nothing else (gateway/quotes/failover_wait.py)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ClusterError, ConnectionError, ReadOnlyError, ResponseError, TryAgainError

from gateway.quotes.failover_wait import through_failover


def _waits(outcome: str) -> float:
    return REGISTRY.get_sample_value("gateway_redis_failover_waits_total",
                                     {"user": "quotes", "outcome": outcome}) or 0.0


class Flaky:
    """Raises each of ``errors`` once, then answers ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_failover_errors_are_retried_until_redis_answers() -> None:
    served = _waits("served")
    step = Flaky(ConnectionError("primary gone"), ReadOnlyError("demoted"), TryAgainError("migrating"),
                 ClusterError("TTL exhausted."))
    assert await through_failover(step, wait=10) == "ok"
    assert step.calls == 5
    assert _waits("served") == served + 1


async def test_the_wait_is_bounded_then_the_error_goes_to_the_caller() -> None:
    gave_up = _waits("gave_up")
    step = Flaky(*[ConnectionError("down")] * 1000)
    with pytest.raises(ConnectionError):
        await through_failover(step, wait=0.3)
    assert 1 < step.calls < 1000
    assert _waits("gave_up") == gave_up + 1


async def test_other_errors_and_a_zero_wait_are_not_retried() -> None:
    step = Flaky(ResponseError("WRONGTYPE"))
    with pytest.raises(ResponseError):
        await through_failover(step, wait=10)
    step = Flaky(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        await through_failover(step, wait=0)
    assert step.calls == 1


def test_every_outcome_exists_at_zero_from_start_up() -> None:
    assert _waits("served") >= 0
    assert REGISTRY.get_sample_value("gateway_redis_failover_waits_total",
                                     {"user": "quotes", "outcome": "gave_up"}) is not None


async def test_uvloops_closed_transport_error_is_waited_out_like_a_lost_connection() -> None:
    step = Flaky(RuntimeError("unable to perform operation on <TCPTransport closed=True reading=False "
                              "0x1>; the handler is closed"))
    assert await through_failover(step, wait=10) == "ok"
