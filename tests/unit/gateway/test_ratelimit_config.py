"""Rate-limit and auth config: tiers, overrides, route options; bad keys name themselves."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError

BASE: dict[str, Any] = {
    "listeners": {"external": {"port": 8080}, "internal": {"port": 8081}},
    "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9101"]}},
    "api_keys": {"store": "/tmp/keys.json", "pepper": "0123456789abcdef-pepper"},
    "ratelimit": {"redis_url": "redis://127.0.0.1:6379/0", "default_tier": "bronze",
                  "tiers": {"gold": {"burst": "50/second", "rate": "1000/minute", "quota": "100000/day"},
                            "bronze": {"burst": "5/second", "quota": "5000/day"}},
                  "partners": {"acme": {"quota": "250000/day"}}},
    "routes": [
        {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
         "methods": ["GET", "POST"], "cluster": "mes",
         "auth": {"scopes": {"GET": ["orders:read"], "POST": "orders:write"}},
         "ratelimit": {"limits": {"orders-burst": "20/second"}, "on_backend_error": "closed"}},
        {"name": "orders", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
    ],
}


def changed(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_partner_sections_parse_into_windows_scopes_and_route_options() -> None:
    cfg = parse_config(BASE)
    external, internal = cfg.routes
    assert external.auth.required
    assert external.auth.scopes_for("POST") == {"orders:write"}
    assert external.auth.scopes_for("HEAD") == {"orders:read"}  # HEAD follows GET
    assert external.ratelimit.enabled
    assert external.ratelimit.on_backend_error == "closed"
    assert [(w.name, w.amount, w.seconds) for w in external.ratelimit.windows] == [("orders-burst", 20, 1)]
    assert not internal.auth.required
    assert not internal.ratelimit.enabled
    acme = cfg.ratelimit.windows_for("acme", "gold")
    assert [(w.name, w.amount, w.seconds) for w in acme] == [
        ("burst", 50, 1), ("rate", 1000, 60), ("quota", 250000, 86400)]
    assert [w.name for w in cfg.ratelimit.windows_for("zeta", "unknown-tier")] == ["burst", "quota"]


def test_external_routes_require_auth_and_ratelimit_by_default() -> None:
    data = changed(["routes", 0], {"name": "p", "listener": "external", "prefix": "/partner/x",
                                   "cluster": "mes"})
    route = parse_config(data).routes[0]
    assert route.auth.required
    assert route.ratelimit.enabled
    assert route.ratelimit.on_backend_error == "local"


@pytest.mark.parametrize(("path", "value", "message"), [
    (["ratelimit", "tiers", "gold", "burst"], "fifty/second", "ratelimit.tiers.gold.burst: cannot parse"),
    (["ratelimit", "tiers", "gold", "Bad Name"], "1/second", "ratelimit.tiers.gold.Bad Name: window names"),
    (["ratelimit", "default_tier"], "platinum", "ratelimit.default_tier: unknown tier 'platinum'"),
    (["ratelimit", "redis_url"], "http://x", "ratelimit.redis_url: must be a redis:// URL"),
    (["ratelimit", "socket_timeout"], 30, "ratelimit.socket_timeout: must be <= 5, got 30"),
    (["ratelimit", "bucket"], 1, "ratelimit: unknown key 'bucket'"),
    (["api_keys", "pepper"], "short", "api_keys.pepper: must be at least 16 characters"),
    (["api_keys", "path"], "x", "api_keys: unknown key 'path'"),
    (["routes", 0, "auth", "scopes", "GET"], ["orders:delete"], "routes[0].auth.scopes.GET: unknown scope"),
    (["routes", 0, "auth", "scopes", "PUT"], ["orders:write"], "routes[0].auth.scopes.PUT: the route does"),
    (["routes", 0, "auth", "required"], False, "routes[0].auth.scopes: a route with required: false"),
    (["routes", 0, "ratelimit", "on_backend_error"], "maybe", "routes[0].ratelimit.on_backend_error"),
    (["routes", 0, "ratelimit", "limits"], {"burst": "1/second"},
     "routes[0].ratelimit.limits.burst: already"),
    (["routes", 1, "ratelimit"], True,
     "routes[1].ratelimit: limits are per partner, so the route needs auth"),
])
def test_bad_partner_config_names_the_key(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(changed(path, value))
    assert message in str(err.value)


def test_tiers_without_default_need_default_tier() -> None:
    data = copy.deepcopy(BASE)
    del data["ratelimit"]["default_tier"]
    with pytest.raises(ConfigError, match=r"ratelimit\.default_tier: is required"):
        parse_config(data)


def test_shipped_gateway_yaml_still_parses_with_partner_sections() -> None:
    from gateway.config import load_config

    cfg = load_config("config/gateway.yaml", env={})
    assert any(r.auth.required for r in cfg.routes)
