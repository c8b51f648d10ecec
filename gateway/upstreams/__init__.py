"""Cluster manager: named clusters of endpoints with balancing, health and resilience.

The proxy handler needs only ``ClusterManager.get(name).request(...)``; config
types and parsers are exported for the gateway's config loader and route table.
"""

from gateway.upstreams.balancers import (
    Balancer,
    ConsistentHash,
    LeastRequest,
    PeakEwma,
    RoundRobin,
    make_balancer,
)
from gateway.upstreams.breaker import CircuitBreaker
from gateway.upstreams.cluster import Cluster
from gateway.upstreams.config import (
    BreakerConfig,
    ClusterConfig,
    HealthCheckConfig,
    OutlierConfig,
    RetryBudgetConfig,
    RetryPolicy,
    TimeoutPolicy,
    merge_retry,
    merge_timeouts,
    parse_cluster,
    parse_retry,
    parse_timeouts,
)
from gateway.upstreams.endpoint import Endpoint
from gateway.upstreams.health import HealthChecker
from gateway.upstreams.manager import ClusterManager
from gateway.upstreams.outlier import OutlierDetector
from gateway.upstreams.request import IDEMPOTENT_METHODS, UpstreamRequest
from gateway.upstreams.retry_budget import RetryBudget

__all__ = [
    "IDEMPOTENT_METHODS",
    "Balancer",
    "BreakerConfig",
    "CircuitBreaker",
    "Cluster",
    "ClusterConfig",
    "ClusterManager",
    "ConsistentHash",
    "Endpoint",
    "HealthCheckConfig",
    "HealthChecker",
    "LeastRequest",
    "OutlierConfig",
    "OutlierDetector",
    "PeakEwma",
    "RetryBudget",
    "RetryBudgetConfig",
    "RetryPolicy",
    "RoundRobin",
    "TimeoutPolicy",
    "UpstreamRequest",
    "make_balancer",
    "merge_retry",
    "merge_timeouts",
    "parse_cluster",
    "parse_retry",
    "parse_timeouts",
]
