"""The one tuple of errors a shared-state user catches when Redis is down, failing over or moving.

redis-py raises three families, and only two of them are ``RedisError``:

* ``RedisError``: connection and timeout errors, error replies, and on Cluster ``ClusterDownError``
  (``CLUSTERDOWN``, ``MasterDownError``), ``TryAgainError`` (a multi-key command during a slot
  migration), ``MovedError``/``AskError`` once redis-py stops following redirects;
* ``RedisClusterException`` — **not** a ``RedisError``: a Cluster client that reaches none of its
  seeds, or a slot no node covers (``SlotNotCoveredError``) while a failover is under way;
* ``OSError`` (``TimeoutError`` included): sockets, TLS, our own deadlines.

Every user degrades or retries on :data:`REDIS_ERRORS` as its docs say (docs/redis.md).
"""

from __future__ import annotations

from redis.exceptions import RedisClusterException, RedisError

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)

__all__ = ["REDIS_ERRORS"]
