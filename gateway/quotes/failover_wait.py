"""A quote submission or read waits out a Redis failover (bounded) instead of answering 503 at once.

The rate limiter and the cache can degrade while Redis fails over; the job API cannot (a job
exists only in the queue). A failover takes seconds (Sentinel: ``down-after-milliseconds`` plus
the election; Cluster: about the node timeout), so the request retries the whole queue step on
the errors of ``sharedstate.errors.FAILOVER_ERRORS`` — capped exponential backoff with full jitter — until it
succeeds or ``quotes.failover_wait`` seconds have passed, then the caller answers 503 as before.

Retrying a submission is safe: a ``SUBMIT`` that ran but whose answer was lost left the model in
flight for its owner, so the retry's first step attaches to that job (the same id); with an
``Idempotency-Key`` it is a replay. What a retry cannot recover is a job answered 202 and lost with
the old primary before it reached the replica (Redis replicates asynchronously; docs/redis.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.metrics import REDIS_FAILOVER_WAITS
from resilience.backoff import backoff_delay
from sharedstate.errors import FAILOVER_ERRORS, closed_connection_as_connection_error

T = TypeVar("T")
BASE, CAP = 0.05, 1.0  # s: the first retry comes quickly, later ones at most a second apart


async def through_failover(step: Callable[[], Awaitable[T]], *, wait: float) -> T:
    """``await step()``, again after each failover error until ``wait`` s have passed (then re-raise)."""
    deadline = time.monotonic() + wait
    attempt = 0
    while True:
        try:
            with closed_connection_as_connection_error():
                result = await step()
        except FAILOVER_ERRORS:
            attempt += 1
            delay = backoff_delay(attempt, base=BASE, cap=CAP)
            if wait <= 0:
                raise
            if time.monotonic() + delay > deadline:
                REDIS_FAILOVER_WAITS.labels(user="quotes", outcome="gave_up").inc()
                raise
            await asyncio.sleep(delay)
            continue
        if attempt:
            REDIS_FAILOVER_WAITS.labels(user="quotes", outcome="served").inc()
        return result
