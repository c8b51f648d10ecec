"""The ``reason`` of ``gateway_ratelimit_backend_errors_total``: a late reply is a timeout, never
an unreachable store; refused/reset connections and error replies are (docs/metrics-gateway.md)."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    MaxConnectionsError,
    ReadOnlyError,
    RedisClusterException,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from gateway.metrics import RATELIMIT_ERROR_REASONS
from gateway.ratelimit.failures import failure_reason
from gateway.ratelimit.pipe import HandshakeError, RespError


@pytest.mark.parametrize(("exc", "reason"), [
    (TimeoutError("no Redis reply within 0.05 s"), "timeout"),  # the pipe's own deadline (an OSError)
    (RedisTimeoutError("Timeout reading from socket"), "timeout"),
    (MaxConnectionsError("Too many connections"), "timeout"),  # every connection waits for a reply
    (ConnectionRefusedError(111, "Connection refused"), "connection"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection"),
    (RedisConnectionError("Connection closed by server."), "connection"),
    (AuthenticationError("invalid password"), "connection"),
    (HandshakeError("Redis refused AUTH: WRONGPASS"), "connection"),
    (BusyLoadingError("Redis is loading the dataset in memory"), "connection"),
    (RedisClusterException("Redis Cluster cannot be connected"), "connection"),
    (ReadOnlyError("You can't write against a read only replica."), "reply"),
    (ClusterDownError("CLUSTERDOWN The cluster is down"), "reply"),
    (RespError("ERR unknown command"), "reply"),
    (AttributeError("'NoneType' object has no attribute 'execute_command'"), "other"),
])
def test_each_failure_has_one_bounded_reason(exc: BaseException, reason: str) -> None:
    assert failure_reason(exc) == reason
    assert reason in RATELIMIT_ERROR_REASONS
