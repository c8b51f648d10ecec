"""One ConfigError across gateway, sidecar and legacy_adapters, one message format naming the full path.

Every section of the gateway's YAML file and every command-line check of the other deployables
raises ``configkit.ConfigError`` whose message starts with the full path of the bad setting.
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
from pathlib import Path
from typing import Any

import pytest

import configkit
from gateway import errors as gateway_errors
from gateway.config import parse_config
from legacy_adapters.worker import check_settings
from sidecar.config import SidecarConfig
from sidecar.relay import RelayConfig

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ("gateway", "sidecar", "legacy_adapters", "telemetry", "contracts", "resilience", "configkit")

BASE: dict[str, Any] = {
    "listeners": {"external": {"port": 8080}, "internal": {"port": 8081}},
    "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9101"]}},
    "routes": [
        {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders", "cluster": "mes",
         "auth": {"scopes": {"GET": ["orders:read"]}}, "ratelimit": {"limits": {"orders-burst": "5/second"}},
         "cache": {"ttl": 5}},
        {"name": "orders", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
        {"name": "quotes", "listener": "internal", "prefix": "/quotes", "handler": "quotes"},
    ],
    "quotes": {"backlog_bound": 10},
    "api_keys": {"failures": {"limit": "30/minute"}},
    "ratelimit": {"tiers": {"default": {"rate": "60/minute"}}},
    "cache": {"backend": "memory"},
    "admin": {"port": 9901},
    "logging": {"level": "INFO"},
    "operator_auth": {"tokens": []},
}


def _changed(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node: Any = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return data


def _dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(configkit.ConfigError) as info:
        parse_config(data)
    return str(info.value)


def test_the_base_config_is_valid() -> None:
    assert len(parse_config(BASE).routes) == 3


#: an integer setting of every section that has one
INTEGERS = [
    ("listeners", "external", "port"),
    ("admin", "port"),
    ("routes", 1, "max_body_bytes"),
    ("routes", 0, "cache", "max_object_bytes"),
    ("clusters", "mes", "breaker", "max_requests"),
    ("clusters", "mes", "retry", "attempts"),
    ("cache", "memory_max_bytes"),
    ("quotes", "backlog_bound"),
    ("api_keys", "failures", "max_addresses"),
]


@pytest.mark.parametrize("path", INTEGERS, ids=_dotted)
@pytest.mark.parametrize(("value", "shown"), [(8080.7, "8080.7"), (True, "true"), ("8080", "'8080'")])
def test_integer_settings_are_strict_in_every_section(path: tuple[Any, ...], value: Any, shown: str) -> None:
    assert _error(_changed(path, value)) == f"{_dotted(path)}: expected an integer, got {shown}"


NUMBERS = [
    ("listeners", "internal", "body_timeout"),
    ("routes", 1, "body_timeout"),
    ("routes", 0, "cache", "ttl"),
    ("clusters", "mes", "timeouts", "connect"),
    ("ratelimit", "socket_timeout"),
    ("cache", "collapse_timeout"),
    ("quotes", "retry_after"),
    ("drain_timeout",),
]


@pytest.mark.parametrize("path", NUMBERS, ids=_dotted)
@pytest.mark.parametrize(("value", "shown"), [(True, "true"), ("10", "'10'")])
def test_number_settings_refuse_bools_and_strings_in_every_section(path: tuple[Any, ...], value: Any,
                                                                    shown: str) -> None:
    assert _error(_changed(path, value)) == f"{_dotted(path)}: expected a number, got {shown}"


@pytest.mark.parametrize(("path", "value", "message"), [
    (("listeners", "external", "max_header_fields"), 4,
     "listeners.external.max_header_fields: must be >= 8, got 4"),
    (("admin", "hots"), "x", "admin: unknown key 'hots' (allowed: host, port); did you mean 'host'?"),
    (("logging", "access_log"), 5, "logging.access_log: expected a string, got 5"),
    (("clusters", "mes", "adaptive_concurrency"), {"max_wait_by_priority": {"high": 0}},
     "clusters.mes.adaptive_concurrency.max_wait_by_priority.high: must be > 0, got 0"),
    (("clusters", "mes", "health_check"), {"expected_statuses": [200, 700]},
     "clusters.mes.health_check.expected_statuses[1]: must be <= 599, got 700"),
    (("clusters", "mes", "endpoints"), ["http://127.0.0.1:1", 5], "clusters.mes.endpoints[1]: expected a URL "
                                                                  "string, got 5"),
    (("routes", 0, "auth", "scopes", "GET"), ["orders:raed"],
     "routes[0].auth.scopes.GET: unknown scope 'orders:raed' (have: orders:read, orders:write, "
     "quotes:read, quotes:write)"),
    (("routes", 0, "ratelimit", "limits", "orders-burst"), "5/fortnight",
     "routes[0].ratelimit.limits.orders-burst: cannot parse '5/fortnight' (use e.g. '10/second')"),
    (("routes", 0, "cache", "key_params"), {"page": [1]},
     "routes[0].cache.key_params.page: expected a default (a string or a number) or null, got a list"),
    (("api_keys", "failures", "limit"), "lots", "api_keys.failures.limit: must look like '30/minute' or "
                                                "'10 per 10 seconds', got 'lots'"),
    (("ratelimit", "tiers", "default", "rate"), "0/minute",
     "ratelimit.tiers.default.rate: the amount must be >= 1, got '0/minute'"),
    (("cache", "backend"), "disk", "cache.backend: must be one of memory, redis, got 'disk'"),
    (("quotes", "materials"), ["PLA", 3], "quotes.materials[1]: expected a string, got 3"),
    (("operator_auth", "tokens"), ["short"],
     "operator_auth.tokens[0]: must be at least 32 characters (e.g. `openssl rand -hex 32`)"),
])
def test_nested_errors_name_their_full_path_in_every_section(path: tuple[Any, ...], value: Any,
                                                              message: str) -> None:
    assert _error(_changed(path, value)) == message


def test_the_gateway_config_error_is_the_kit_s() -> None:
    assert gateway_errors.ConfigError is configkit.ConfigError


def test_sidecar_options_raise_the_same_class_naming_the_option() -> None:
    with pytest.raises(configkit.ConfigError) as info:
        SidecarConfig(kind="mes", upstream="http://127.0.0.1:9101", instance_id="m", listen_port=70000)
    assert str(info.value) == "--listen: must be <= 65535, got 70000"
    with pytest.raises(configkit.ConfigError) as info:
        RelayConfig(redis_url="redis://h:1/0", consumer="c", delivery_timeout=90.0)
    assert str(info.value) == "--relay-timeout: must be < 60, got 90.0"


def test_pricing_worker_options_raise_the_same_class_naming_the_option() -> None:
    args = argparse.Namespace(backend="m:f", shards=1, concurrency=0, max_attempts=5, webhook_concurrency=32,
                              webhook_per_partner=2, visibility_timeout=30.0, webhook_timeout=10.0)
    with pytest.raises(configkit.ConfigError) as info:
        check_settings(args)
    assert str(info.value) == "--concurrency: must be >= 1, got 0"


def test_no_production_package_defines_another_config_error_class() -> None:
    defined = sorted(
        f"{path.relative_to(ROOT)}:{node.name}"
        for package in PRODUCTION for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("ConfigError"))
    assert defined == ["configkit/errors.py:ConfigError"]


def test_the_kit_stands_on_the_standard_library_only() -> None:
    """So gateway, sidecar and legacy_adapters may all import it (docs/architecture.md, layers)."""
    imported: set[str] = set()
    for path in (ROOT / "configkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert imported - {"configkit"} <= set(sys.stdlib_module_names)
