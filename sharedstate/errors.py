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
slot migration: a multi-key script whose keys are half moved gets ``TRYAGAIN``. A caller that
cannot degrade (a quote submission must reach the queue) waits these out for a bounded time
instead of answering 503 at once (``gateway/quotes/failover_wait.py``); an error reply that is
not in the list (a script error, a wrong type) fails at once.
"""

from __future__ import annotations

from redis.exceptions import (
    ClusterDownError,
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
    ConnectionError, TimeoutError, ReadOnlyError, MasterDownError, ClusterDownError, TryAgainError,
    RedisClusterException, OSError)

__all__ = ["FAILOVER_ERRORS", "REDIS_ERRORS"]
