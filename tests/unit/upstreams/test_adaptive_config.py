"""Config of load shedding: the cluster's ``adaptive_concurrency`` section and route ``priority``."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.upstreams.cluster import Cluster, make_limiter
from gateway.upstreams.config import parse_cluster
from resilience.shedding import PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NORMAL


def _cluster(**adaptive: Any) -> dict[str, Any]:
    return {"endpoints": ["http://127.0.0.1:9101"], "adaptive_concurrency": adaptive}


def test_the_section_is_optional_and_off_by_default() -> None:
    config = parse_cluster("mes", {"endpoints": ["http://127.0.0.1:9101"]})
    assert config.adaptive_concurrency is None
    assert make_limiter(config) is None
    assert not Cluster(config).adaptive
    assert Cluster(config).snapshot()["adaptive_concurrency"] is None


def test_waits_per_priority_reach_the_limiter() -> None:
    config = parse_cluster("mes", _cluster(max_wait=0.5, max_wait_by_priority={"high": 2.0, "low": 0.1}))
    limiter = make_limiter(config)
    assert limiter is not None
    assert limiter.max_wait_by_priority == {PRIORITY_HIGH: 2.0, PRIORITY_LOW: 0.1}
    assert limiter.max_wait == 0.5  # normal


def test_the_section_builds_the_cluster_limiter() -> None:
    config = parse_cluster("mes", _cluster(initial_limit=10, min_limit=2, max_limit=40, max_queue=5,
                                           max_wait=0.1))
    limiter = make_limiter(config)
    assert limiter is not None
    assert (limiter.limit, limiter.max_queue, limiter.max_wait) == (10, 5, 0.1)
    assert limiter.algorithm.max_limit == 40
    cluster = Cluster(config)
    assert cluster.adaptive
    assert cluster.snapshot()["adaptive_concurrency"]["limit"] == 10


@pytest.mark.parametrize(("adaptive", "message"), [
    ({"max_limit": 2000}, "clusters.mes.adaptive_concurrency.max_limit: must be <= breaker.max_requests"),
    ({"initial_limit": 1, "min_limit": 2}, "clusters.mes.adaptive_concurrency.initial_limit"),
    ({"max_wait": 0}, "clusters.mes.adaptive_concurrency.max_wait: must be > 0"),
    ({"tolerance": 0.5}, "clusters.mes.adaptive_concurrency.tolerance"),
    ({"algorithm": "vegas"}, "clusters.mes.adaptive_concurrency.algorithm"),
    ({"max_wiat": 0.1}, "did you mean 'max_wait'?"),
    ({"max_wait_by_priority": {"urgent": 1.0}}, "max_wait_by_priority: unknown priority 'urgent'"),
    ({"max_wait_by_priority": {"high": 0}}, "max_wait_by_priority.high: must be > 0"),
    ({"max_wait_by_priority": [2.0]}, "max_wait_by_priority: expected a mapping"),
])
def test_bad_values_name_their_key(adaptive: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace("(", r"\(")):
        parse_cluster("mes", _cluster(**adaptive))


def _gateway(routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "listeners": {"external": {"port": 0}, "internal": {"port": 0}},
        "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9101"]}},
        "routes": routes,
    }


def test_route_priority_defaults_to_high_inside_and_normal_outside() -> None:
    config = parse_config(_gateway([
        {"name": "ops", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
        {"name": "partner", "listener": "external", "prefix": "/partner/v1/orders", "cluster": "mes",
         "auth": {"required": False}},
        {"name": "bulk", "listener": "external", "prefix": "/partner/test/export", "cluster": "mes",
         "auth": {"required": False}, "priority": "low"},
    ]))
    assert [r.priority for r in config.routes] == [PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW]


def test_an_unknown_route_priority_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\].priority: must be one of low, normal, high"):
        parse_config(_gateway([{"listener": "internal", "prefix": "/orders", "cluster": "mes",
                                "priority": "urgent"}]))
