"""The one tuple of errors a shared-state user catches when Redis is down, failing over or moving.

redis-py raises three families, and only two of them are ``RedisError``:

* ``RedisError``: connection and timeout errors, error replies, and on Cluster ``ClusterDownError``
  (``CLUSTERDOWN``, ``MasterDownError``), ``TryAgainError`` (a multi-key command during a slot
  migration), ``MovedError``/``AskError`` once redis-py stops following redirects;
* ``RedisClusterException`` — **not** a ``RedisError``: a Cluster client that reaches none of its
  seeds, or a slot no node covers (``SlotNotCoveredError``) while a failover is under way;
* ``OSError`` (``TimeoutError`` included): sockets, TLS, our own deadlines.

Every user degrades or retries on :data:`REDIS_ERRORS` as its docs say (docs/redis.md).

:data:`FAILOVER_ERRORS` are those of them that a failover or a slot migration raises for a while,
and only for a while. A Sentinel failover: the dead primary's connections fail
(``ConnectionError``, ``TimeoutError``), the sentinels name no primary until they agree
(``MasterNotFoundError``, a ``ConnectionError``), a demoted primary refuses writes
(``ReadOnlyError``), a replica whose link is down refuses reads (``MasterDownError``). A Cluster
failover: the dead primary's slots are not served until its replica is promoted
(``ClusterDownError``, ``SlotNotCoveredError``, no seed answering: ``RedisClusterException``). A
slot migration: a multi-key script whose keys are half moved gets ``TRYAGAIN``, and redis-py gives
up following ``MOVED``/``ASK``/``TRYAGAIN`` after 16 tries (``ClusterError: TTL exhausted``). A caller that
cannot degrade (a quote submission must reach the queue) waits these out for a bounded time
instead of answering 503 at once (``gateway/quotes/failover_wait.py``); an error reply that is
not in the list (a script error, a wrong type) fails at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import (
    ClusterError,
    ConnectionError,
    MasterDownError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TimeoutError,
    TryAgainError,
)

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)
FAILOVER_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError, TimeoutError, ReadOnlyError, MasterDownError, ClusterError, TryAgainError,
    RedisClusterException, OSError)  # ClusterError: CLUSTERDOWN, and redis-py's "TTL exhausted"

__all__ = ["FAILOVER_ERRORS", "REDIS_ERRORS", "closed_connection_as_connection_error"]


@contextmanager
def closed_connection_as_connection_error() -> Iterator[None]:
    """Inside: uvloop's ``RuntimeError`` for a write on a closed transport becomes ``ConnectionError``.

    redis-py writes a command on a pooled connection whose peer is gone (a SIGKILLed Cluster
    primary); under uvloop (the gateway's loop) the write raises ``RuntimeError: unable to perform
    operation on <TCPTransport closed=True …>; the handler is closed`` instead of an ``OSError``, so
    it escapes every ``except REDIS_ERRORS`` and became a 500 in ``bench.failover``'s Cluster kill
    (redis/redis-py#4287 is the same leak under plain asyncio; MagicStack/uvloop#506). redis-py has
    already dropped the connection; the caller sees what it handles anyway: a lost connection.
    """
    try:
        yield
    except RuntimeError as exc:
        if "the handler is closed" not in str(exc):
            raise
        raise ConnectionError(f"write on a closed connection: {exc}") from exc
