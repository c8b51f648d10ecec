"""Route ``cache:`` policies and the top-level ``cache:`` section are validated at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cache.policy import parse_cache_section, parse_route_cache
from gateway.config import parse_config
from gateway.errors import ConfigError


def _config(route_cache: Any, *, listener: str = "internal", prefix: str = "/orders",
            extra: dict[str, Any] | None = None, **top: Any) -> Any:
    route = {"name": "orders", "listener": listener, "prefix": prefix, "cluster": "mes", "cache": route_cache,
             **(extra or {})}
    return parse_config({"listeners": {"internal": {}, "external": {}},
                         "clusters": {"mes": {"endpoints": ["http://127.0.0.1:1"]}},
                         "routes": [route], **top})


def test_route_policy_is_parsed_with_defaults() -> None:
    cfg = _config({"ttl": 5, "key_params": {"status": None, "page": 1, "per_page": 50},
                   "stale_while_revalidate": 10, "stale_if_error": 60})
    policy = cfg.routes[0].cache
    assert policy is not None
    assert dict(policy.key_params) == {"status": "", "page": "1", "per_page": "50"}
    assert (policy.ttl, policy.keep_for, policy.unknown_params) == (5, 65, "bypass")
    assert not policy.vary_partner
    assert policy.honor_client_no_cache


def test_key_params_may_be_a_plain_list() -> None:
    policy = parse_route_cache({"ttl": 1, "key_params": ["status"]}, "p", listener="internal",
                               auth_required=False)
    assert policy is not None
    assert dict(policy.key_params) == {"status": ""}


@pytest.mark.parametrize(("cache", "message"), [
    ({}, r"routes\[0\]\.cache\.ttl: is required"),
    ({"ttl": 0}, r"routes\[0\]\.cache\.ttl: must be > 0, got 0"),
    ({"ttl": 5, "tll": 1}, r"routes\[0\]\.cache: unknown key 'tll'"),
    ({"ttl": 5, "unknown_params": "drop"}, r"unknown_params: must be one of bypass, ignore"),
    ({"ttl": 5, "max_object_bytes": 10_000_000}, r"max_object_bytes: must be <= 262144"),
    ({"ttl": 5, "vary_partner": True}, r"vary_partner: needs auth"),
    ({"ttl": 5, "stale_if_error": 100_000}, r"at most 86400 s"),
])
def test_bad_route_policy_names_its_key(cache: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(cache)


def test_external_routes_must_vary_by_partner() -> None:
    with pytest.raises(ConfigError, match="vary_partner: external routes"):
        _config({"ttl": 5, "vary_partner": False}, listener="external", prefix="/partner/v1/orders")
    cfg = _config({"ttl": 5}, listener="external", prefix="/partner/v1/orders")
    assert cfg.routes[0].cache.vary_partner  # the default on external routes


def test_backend_section() -> None:
    assert parse_cache_section(None).backend == "memory"
    cfg = parse_cache_section({"backend": "redis", "redis_url": "redis://127.0.0.1:1/2"})
    assert cfg.events_redis_url == "redis://127.0.0.1:1/2"  # events default to the store's Redis
    with pytest.raises(ConfigError, match=r"cache\.redis_url: is required"):
        parse_cache_section({"backend": "redis"})
    with pytest.raises(ConfigError, match=r"cache\.backend: must be one of memory, redis"):
        parse_cache_section({"backend": "memcached"})
