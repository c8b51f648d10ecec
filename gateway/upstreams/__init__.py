"""Cluster manager: named clusters of endpoints with balancing, health and resilience.

The proxy handler needs only ``ClusterManager.get(name).request(...)``; config
types and parsers are exported for the gateway's config loader and route table.

Names are imported lazily (PEP 562) on first access: ``gateway.upstreams.adaptive``
must be importable by the sidecar's relay without pulling in aiohttp or creating
the gateway's Prometheus metrics, and importing a submodule runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        AdaptiveConcurrencyConfig,
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
    "AdaptiveConcurrencyConfig",
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

_MODULES = {
    "balancers": ("Balancer", "ConsistentHash", "LeastRequest", "PeakEwma", "RoundRobin", "make_balancer"),
    "breaker": ("CircuitBreaker",),
    "cluster": ("Cluster",),
    "config": (
        "AdaptiveConcurrencyConfig", "BreakerConfig", "ClusterConfig", "HealthCheckConfig", "OutlierConfig",
        "RetryBudgetConfig", "RetryPolicy", "TimeoutPolicy", "merge_retry", "merge_timeouts",
        "parse_cluster", "parse_retry", "parse_timeouts",
    ),
    "endpoint": ("Endpoint",),
    "health": ("HealthChecker",),
    "manager": ("ClusterManager",),
    "outlier": ("OutlierDetector",),
    "request": ("IDEMPOTENT_METHODS", "UpstreamRequest"),
    "retry_budget": ("RetryBudget",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
