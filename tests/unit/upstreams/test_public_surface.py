"""gateway.upstreams exports exactly its documented public surface."""

from __future__ import annotations

import gateway.upstreams as upstreams


def test_every_exported_name_exists_and_is_documented() -> None:
    missing = [name for name in upstreams.__all__ if not hasattr(upstreams, name)]
    assert missing == []
    undocumented = [
        name for name in upstreams.__all__
        if callable(getattr(upstreams, name)) and not getattr(upstreams, name).__doc__
    ]
    assert undocumented == []


def test_proxy_facing_api_is_exported() -> None:
    assert {"Cluster", "ClusterManager", "ClusterConfig", "TimeoutPolicy", "RetryPolicy",
            "parse_cluster", "merge_timeouts", "merge_retry"} <= set(upstreams.__all__)
