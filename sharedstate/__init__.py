"""Shared runtime for every user of the shared state (Redis): the one connection spec.

``redis_spec.parse_redis_spec`` validates a spec (single server, TLS, Sentinel, Cluster) and
``RedisSpec.client`` connects redis-py to it; docs/configuration.md#redis-connection-spec.
"""

from sharedstate.redis_spec import KINDS, RedisSpec, parse_redis_spec

__all__ = ["KINDS", "RedisSpec", "parse_redis_spec"]
