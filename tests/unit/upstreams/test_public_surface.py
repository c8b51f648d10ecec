"""gateway.upstreams' public names exist, documented, in the modules that define them."""

from __future__ import annotations

import importlib

import pytest

import gateway.upstreams

#: What the package exported before it became a plain package (the proxy-facing API among it:
#: Cluster, ClusterManager, ClusterConfig, TimeoutPolicy, RetryPolicy, parse_cluster, merge_*).
PUBLIC = {
    "balancers": ("Balancer", "ConsistentHash", "LeastRequest", "PeakEwma", "RoundRobin", "make_balancer"),
    "breaker": ("CircuitBreaker",),
    "cluster": ("Cluster",),
    "config": ("AdaptiveConcurrencyConfig", "BreakerConfig", "ClusterConfig", "HealthCheckConfig",
               "OutlierConfig", "RetryBudgetConfig", "RetryPolicy", "TimeoutPolicy", "merge_retry",
               "merge_timeouts", "parse_cluster", "parse_retry", "parse_timeouts"),
    "endpoint": ("Endpoint",),
    "health": ("HealthChecker",),
    "manager": ("ClusterManager",),
    "outlier": ("OutlierDetector",),
    "retry_budget": ("RetryBudget",),
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_name_exists_and_is_documented(module: str) -> None:
    found = importlib.import_module(f"gateway.upstreams.{module}")
    missing = [name for name in PUBLIC[module] if not hasattr(found, name)]
    assert missing == []
    undocumented = [name for name in PUBLIC[module]
                    if callable(getattr(found, name)) and not getattr(found, name).__doc__]
    assert undocumented == []


def test_the_package_itself_is_plain() -> None:
    """No lazy re-exports (PEP 562): importers name the module that defines what they use."""
    assert not hasattr(gateway.upstreams, "__getattr__")
    assert not hasattr(gateway.upstreams, "__all__")
