"""Config validation: a bad key fails fast with a message naming it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config, parse_config, substitute_env
from gateway.errors import ConfigError

BASE: dict[str, Any] = {
    "listeners": {"external": {"port": 8080}, "internal": {"port": 8081, "trust_forwarded": True}},
    "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9101", "http://127.0.0.1:9102"]}},
    "routes": [
        {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
         "cluster": "mes", "rewrite_prefix": "/orders"},
        {"name": "orders", "listener": "internal", "prefix": "/orders", "methods": ["GET"],
         "cluster": "mes", "timeouts": {"per_try": 2.5}},
    ],
}


def with_change(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_valid_config_parses_into_routes_and_clusters() -> None:
    cfg = parse_config(BASE)
    assert set(cfg.listeners) == {"external", "internal"}
    assert [r.name for r in cfg.routes_for("internal")] == ["orders"]
    assert cfg.routes[1].methods == frozenset({"GET"})


def test_route_timeout_override_keeps_cluster_defaults_for_other_keys() -> None:
    cfg = parse_config(BASE)
    cluster_timeouts = cfg.clusters["mes"].timeouts
    route = cfg.routes[1]
    assert route.timeouts.per_try == 2.5
    assert route.timeouts.connect == cluster_timeouts.connect
    assert route.timeouts.overall == cluster_timeouts.overall


@pytest.mark.parametrize(("path", "value", "message"), [
    (["routes", 1, "cluster"], "mse", "routes[1].cluster: unknown cluster 'mse'"),
    (["routes", 0, "listner"], "external", "routes[0]: unknown key 'listner'"),
    (["routes", 1, "prefix"], "orders", "routes[1].prefix: must start with '/'"),
    (["routes", 1, "methods"], ["GETT"], "routes[1].methods: unknown method 'GETT'"),
    (["routes", 0, "prefix"], "/orders", "routes[0].prefix: external routes must live under /partner/"),
    (["listeners", "external", "trust_forwarded"], True, "listeners.external.trust_forwarded"),
    (["listeners", "internal", "port"], "eighty", "listeners.internal.port: expected an integer, got 'eig"),
    (["listeners", "internal", "prot"], 1, "listeners.internal: unknown key 'prot'"),
    (["listeners", "dmz"], {}, "listeners: unknown key 'dmz'"),
    (["routes", 1, "max_body_bytes"], -1, "routes[1].max_body_bytes: must be >= 0"),
])
def test_bad_key_is_named_in_the_error(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(with_change(path, value))
    assert message in str(info.value)


def test_bad_cluster_key_is_named_with_its_full_path() -> None:
    with pytest.raises(ConfigError, match=r"clusters\.mes"):
        parse_config(with_change(["clusters", "mes", "balancr"], "round_robin"))


def test_missing_required_route_key_is_named() -> None:
    data = copy.deepcopy(BASE)
    del data["routes"][1]["cluster"]
    with pytest.raises(ConfigError, match=r"routes\[1\]\.cluster: is required"):
        parse_config(data)


def test_duplicate_route_names_are_rejected() -> None:
    data = copy.deepcopy(BASE)
    data["routes"][0]["name"] = "orders"
    with pytest.raises(ConfigError, match="duplicate route name 'orders'"):
        parse_config(data)


def test_env_references_are_substituted_and_missing_ones_named() -> None:
    assert substitute_env("a ${X} ${Y:-dflt}", {"X": "1"}) == "a 1 dflt"
    with pytest.raises(ConfigError, match="MES_SECRET"):
        substitute_env("${MES_SECRET}", {})


def test_load_config_reports_invalid_yaml_with_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "gw.yaml"
    bad.write_text("listeners: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_shipped_demo_config_is_valid() -> None:
    cfg = load_config(Path(__file__).parents[3] / "config" / "gateway.yaml", env={})
    assert {r.listener for r in cfg.routes} == {"external", "internal"}
    assert all(r.prefix.startswith("/partner/") for r in cfg.routes_for("external"))


def test_path_template_route_parses_and_matches_before_prefixes() -> None:
    data = copy.deepcopy(BASE)
    data["routes"].append({"name": "order-price", "listener": "internal", "path": "/orders/{id}/price",
                           "methods": ["POST"], "cluster": "mes", "timeouts": {"per_try": 600}})
    data["routes"][1]["methods"] = ["GET", "POST"]
    config = parse_config(data)
    route = next(r for r in config.routes if r.name == "order-price")
    assert route.prefix == "/orders/{id}/price"
    assert route.timeouts.per_try == 600


@pytest.mark.parametrize(("change", "message"), [
    ({"prefix": "/orders", "path": "/orders/{id}"}, "routes[2].prefix: exactly one of prefix"),
    ({"path": "/orders/{id"}, "routes[2].path: segment '{id'"),
    ({"path": "/orders/{id}", "rewrite_prefix": "/o"}, "routes[2].rewrite_prefix: needs a prefix route"),
    ({"path": "/orders/{id}", "cache": {"ttl": 5}}, "routes[2].cache: needs a prefix route"),
])
def test_bad_path_routes_are_named(change: dict[str, Any], message: str) -> None:
    data = copy.deepcopy(BASE)
    data["routes"].append({"name": "x", "listener": "internal", "cluster": "mes", **change})
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_shipped_config_sends_order_pricing_to_the_pricing_cluster() -> None:
    config = load_config(Path(__file__).parents[3] / "config" / "gateway.yaml")
    internal = [r for r in config.routes if r.listener == "internal"]
    from gateway.route_table import RouteTable

    table = RouteTable(internal)
    assert table.match("POST", "/orders/42/price").cluster == "mes-pricing"
    assert table.match("POST", "/orders").name == "orders"
