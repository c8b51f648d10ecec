"""The tests' name for the Cluster starter, which lives in ``devstack`` (bench.failover uses it too)."""

from devstack.redis_cluster import ClusterNodes, redis_cluster

__all__ = ["ClusterNodes", "redis_cluster"]
