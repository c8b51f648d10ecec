"""The tests' name for the Sentinel starter, which lives in ``devstack`` (bench.failover uses it too)."""

from devstack.redis_sentinel import SERVICE, SentinelTopology, redis_sentinel

__all__ = ["SERVICE", "SentinelTopology", "redis_sentinel"]
