"""Why a call to the rate-limit store failed: the ``reason`` of ``gateway_ratelimit_backend_errors_total``.

A timeout alone does not say the store is away: on a box at load 14-20 on 2 cores the event loop
misses a 50 ms deadline now and then while Redis is fine. A refused, reset or closed connection,
a refused ``AUTH`` or an error reply is never the box's fault. ``GatewayRateLimitBackendUnreachable``
reads the two apart (docs/runbooks/GatewayRateLimitBackendUnreachable.md); an outage made only of
timeouts (a frozen or black-holed Redis) shows as heartbeat probes that fail in a row.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import MaxConnectionsError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from gateway.ratelimit.pipe import HandshakeError, RespError

__all__ = ["failure_reason"]


def failure_reason(exc: BaseException) -> str:
    """``timeout``, ``connection``, ``reply`` or ``other`` (``gateway.metrics.RATELIMIT_ERROR_REASONS``)."""
    # builtin TimeoutError (= asyncio.TimeoutError, the pipe's own deadline) is an OSError: first
    if isinstance(exc, RedisTimeout | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, MaxConnectionsError):  # every pooled connection waits for a reply: the same
        return "timeout"                      # slowness, seen before the deadline
    if isinstance(exc, HandshakeError):  # AUTH/SELECT refused on a new connection: like redis-py's
        return "connection"              # AuthenticationError, a ConnectionError
    if isinstance(exc, ResponseError | RespError):
        return "reply"
    if isinstance(exc, RedisError | RedisClusterException | OSError):
        return "connection"  # ConnectionError (redis-py's and the builtin), no Cluster seed answering
    return "other"
