"""Cluster config: defaults, validation messages naming the full key path, per-route merges."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.upstreams.config import (
    ClusterConfig,
    HealthCheckConfig,
    RetryPolicy,
    TimeoutPolicy,
    merge_retry,
    merge_timeouts,
    parse_cluster,
    parse_retry,
    parse_timeouts,
)


def _cluster(**extra: Any) -> dict[str, Any]:
    return {"endpoints": ["http://127.0.0.1:9001", "http://127.0.0.1:9002/"], **extra}


def test_minimal_cluster_gets_documented_defaults() -> None:
    cfg = parse_cluster("mes", _cluster())
    assert cfg.name == "mes"
    assert cfg.endpoints == ("http://127.0.0.1:9001", "http://127.0.0.1:9002")  # trailing slash dropped
    assert cfg.balancer == "least_request"
    assert cfg.timeouts == TimeoutPolicy(connect=1.0, per_try=5.0, overall=15.0)
    assert cfg.retry.attempts == 2
    assert cfg.retry.retry_on == {"connect-failure", "reset-before-request", "reset", "5xx", "gateway-error",
                                  "timeout"}
    assert cfg.health_check is None
    assert cfg.breaker.max_requests == 1024


def test_full_cluster_parses_nested_sections() -> None:
    cfg = parse_cluster(
        "mes",
        _cluster(
            balancer="consistent_hash",
            hash_header="X-Partner-Id",
            timeouts={"per_try": 2, "overall": 4.5},
            retry={"attempts": 1, "retry_on": ["5xx"]},
            retry_budget={"budget_percent": 10, "min_retry_concurrency": 1},
            health_check={"path": "/ready", "interval": 2, "expected_statuses": [200, 204]},
            outlier={"consecutive_failures": 3, "consecutive_gateway_failures": 2},
            breaker={"max_requests": 10, "max_pending": 0},
            keepalive_timeout=5,
        ),
    )
    assert cfg.timeouts == TimeoutPolicy(connect=1.0, per_try=2, overall=4.5)
    assert cfg.retry.retry_on == frozenset({"5xx"})
    assert cfg.health_check == HealthCheckConfig(path="/ready", interval=2, expected_statuses=(200, 204))
    assert cfg.outlier.consecutive_gateway_failures == 2
    assert cfg.breaker.max_pending == 0


def test_empty_health_check_section_enables_checks_with_defaults() -> None:
    assert parse_cluster("mes", _cluster(health_check={})).health_check == HealthCheckConfig()
    assert parse_cluster("mes", _cluster(health_check=None)).health_check is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_cluster(balancr="ewma"),
         "clusters.mes: unknown key 'balancr' (allowed: adaptive_concurrency, balancer, breaker, endpoints, "
         "hash_header, health_check, keepalive_timeout, outlier, retry, retry_budget, timeouts, "
         "trust_not_forwarded); did you mean 'balancer'?"),
        (_cluster(health_check={"interval": 0}), "clusters.mes.health_check.interval: must be > 0"),
        (_cluster(timeouts={"per_try": -1}), "clusters.mes.timeouts.per_try: must be > 0"),
        (_cluster(timeouts={"connect": "1s"}), "clusters.mes.timeouts.connect: expected a number, got '1s'"),
        (_cluster(timeouts={"conect": 1}), "clusters.mes.timeouts: unknown key 'conect'"),
        (_cluster(timeouts=5), "clusters.mes.timeouts: expected a mapping, got 5"),
        (_cluster(retry={"attempts": True}), "clusters.mes.retry.attempts: expected an integer, got true"),
        (_cluster(retry={"retry_on": ["5xx", "oops"]}), "clusters.mes.retry.retry_on: unknown value 'oops'"),
        (_cluster(retry={"retry_on": "5xx"}), "clusters.mes.retry.retry_on: expected a list of strings"),
        (_cluster(outlier={"max_ejection_percent": 150}),
         "clusters.mes.outlier.max_ejection_percent: must be <= 100"),
        (_cluster(outlier={"base_ejection_time": 60, "max_ejection_time": 30}),
         "clusters.mes.outlier.max_ejection_time: must be >= base_ejection_time"),
        (_cluster(breaker={"max_requests": 0}), "clusters.mes.breaker.max_requests: must be >= 1"),
        (_cluster(health_check={"expected_statuses": [399, 200]}),
         "clusters.mes.health_check.expected_statuses:"),
        (_cluster(balancer="random"), "clusters.mes.balancer: must be one of"),
        (_cluster(trust_not_forwarded="yes"), "clusters.mes.trust_not_forwarded: expected true or false"),
        ({"endpoints": ["ftp://x"]}, "clusters.mes.endpoints[0]: must be an http(s) base URL"),
        ({"endpoints": ["http://a:1", "http://a:1/"]}, "clusters.mes.endpoints: contains duplicates"),
        ({"endpoints": []}, "clusters.mes.endpoints: must be a non-empty list"),
        ({}, "clusters.mes.endpoints: is required"),
        (_cluster(name="other"), "clusters.mes: unknown key 'name'"),
    ],
)
def test_bad_config_names_the_full_key_path(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cluster("mes", data)
    assert str(info.value).startswith(message), str(info.value)


def test_custom_path_prefix_is_used_in_messages() -> None:
    with pytest.raises(ConfigError, match=r"^gateway\.clusters\.crm\.keepalive_timeout: must be > 0, got 0$"):
        parse_cluster("crm", _cluster(keepalive_timeout=0), path="gateway.clusters")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"^overall: must be > 0"):
        TimeoutPolicy(overall=0)
    with pytest.raises(ConfigError, match=r"^name: must match"):
        ClusterConfig(name="bad name", endpoints=("http://a:1",))


def test_configs_are_frozen_and_keyword_only() -> None:
    policy = TimeoutPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.connect = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        TimeoutPolicy(1.0)  # type: ignore[call-arg]


def test_merge_timeouts_overrides_only_named_keys() -> None:
    base = TimeoutPolicy(connect=0.5, per_try=3.0, overall=9.0)
    merged = merge_timeouts(base, {"overall": 60}, "routes[0].timeouts")
    assert merged == TimeoutPolicy(connect=0.5, per_try=3.0, overall=60)
    assert merge_timeouts(base, None, "routes[0].timeouts") is base


def test_merge_timeouts_names_route_path_on_error() -> None:
    with pytest.raises(ConfigError, match=r"^routes\[0\]\.timeouts\.overall: must be > 0, got 0$"):
        merge_timeouts(TimeoutPolicy(), {"overall": 0}, "routes[0].timeouts")


def test_merge_retry_overrides_only_named_keys() -> None:
    base = RetryPolicy(attempts=3, backoff_base=0.01)
    merged = merge_retry(base, {"attempts": 0}, "routes[1].retry")
    assert merged == dataclasses.replace(base, attempts=0)
    assert merge_retry(base, None, "routes[1].retry") is base


def test_parse_helpers_build_from_defaults() -> None:
    assert parse_timeouts({"connect": 0.2}, "t") == TimeoutPolicy(connect=0.2)
    assert parse_retry({"retry_on": ["reset"]}, "r").retry_on == frozenset({"reset"})
