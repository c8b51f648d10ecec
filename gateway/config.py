"""Gateway configuration: one YAML file parsed once into frozen, validated objects.

A bad key fails fast with a message naming its full path, e.g.
``routes[2].cluster: unknown cluster 'mse'``. Secrets come from environment
variables referenced as ``${NAME}`` in the YAML; they are never printed by the
admin ``/config`` endpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.auth.operator import OperatorAuthConfig, is_loopback, parse_operator_auth_section
from gateway.auth.policy import ApiKeysConfig, parse_api_keys_section, parse_route_auth
from gateway.cache.policy import CacheConfig, parse_cache_section, parse_route_cache
from gateway.errors import ConfigError
from gateway.quotes.config import HANDLERS, QuotesConfig, parse_quotes_section
from gateway.ratelimit.policy import RateLimitConfig, parse_ratelimit_section, parse_route_ratelimit
from gateway.route_table import ALL_METHODS, PARTNER_SCOPES, Route, parse_template
from gateway.upstreams import (
    ClusterConfig,
    RetryPolicy,
    TimeoutPolicy,
    merge_retry,
    merge_timeouts,
    parse_cluster,
)
from resilience.forwarding import PARTNER_REQUEST_HEADERS
from resilience.shedding import PRIORITIES

LISTENER_NAMES = ("external", "internal")
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ListenerConfig:
    """A client-facing listener. Only ``internal`` may trust inbound X-Forwarded-*/X-Request-ID."""

    name: str
    host: str = "127.0.0.1"  # loopback unless configured (the internal one then needs operator tokens)
    port: int = 0
    trust_forwarded: bool = False
    keepalive_timeout: float = 75.0
    max_body_bytes: int = 1024 * 1024
    body_timeout: float = 10.0
    max_header_bytes: int = 8190
    #: The whole header block (names + values) and the number of fields; above: 431 problem+json.
    max_header_block_bytes: int = 32 * 1024
    max_header_fields: int = 100
    #: Request headers a client may send to a cluster (lower case); ``None`` = all but hop-by-hop.
    #: The external listener defaults to ``resilience.forwarding.PARTNER_REQUEST_HEADERS``.
    forward_request_headers: frozenset[str] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminConfig:
    host: str = "127.0.0.1"
    port: int = 9901


@dataclass(frozen=True, kw_only=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    access_log: str | None = None  # None → stdout; a path → that file (rotated)
    app_log: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class GatewayConfig:
    listeners: Mapping[str, ListenerConfig]
    admin: AdminConfig
    logging: LoggingConfig
    clusters: Mapping[str, ClusterConfig]
    routes: tuple[Route, ...]
    drain_timeout: float = 20.0
    api_keys: ApiKeysConfig = field(default_factory=ApiKeysConfig)
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    quotes: QuotesConfig | None = None  # the job API of routes with ``handler: quotes``
    operator_auth: OperatorAuthConfig = field(default_factory=OperatorAuthConfig)
    source: str = field(default="<memory>")

    def routes_for(self, listener: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.listener == listener)


def _check_keys(data: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return data


def _typed(data: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    if value is default:
        return value
    if kind in (int, float) or kind == (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}.{key}: must be a number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{path}.{key}: must be >= 0, got {value!r}")
        return int(value) if kind is int else float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{path}.{key}: must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _header_names(d: Mapping[str, Any], path: str, *, default: frozenset[str] | None
                  ) -> frozenset[str] | None:
    raw = d.get("forward_request_headers")
    if raw is None:
        return default
    if not isinstance(raw, list) or not all(isinstance(h, str) and h.strip() for h in raw):
        raise ConfigError(f"{path}.forward_request_headers: must be a list of header names")
    return frozenset(h.strip().lower() for h in raw)


def _listener(name: str, data: Any) -> ListenerConfig:
    path = f"listeners.{name}"
    d = _check_keys(data, path, set(ListenerConfig.__slots__) - {"name"})
    base = ListenerConfig(name=name)
    cfg = ListenerConfig(
        name=name,
        host=_typed(d, "host", path, str, base.host),
        port=_typed(d, "port", path, int, base.port),
        trust_forwarded=_typed(d, "trust_forwarded", path, bool, base.trust_forwarded),
        keepalive_timeout=_typed(d, "keepalive_timeout", path, float, base.keepalive_timeout),
        max_body_bytes=_typed(d, "max_body_bytes", path, int, base.max_body_bytes),
        body_timeout=_typed(d, "body_timeout", path, float, base.body_timeout),
        max_header_bytes=_typed(d, "max_header_bytes", path, int, base.max_header_bytes),
        max_header_block_bytes=_typed(d, "max_header_block_bytes", path, int, base.max_header_block_bytes),
        max_header_fields=_typed(d, "max_header_fields", path, int, base.max_header_fields),
        forward_request_headers=_header_names(d, path, default=PARTNER_REQUEST_HEADERS if name == "external"
                                              else None),
    )
    if cfg.max_header_block_bytes < cfg.max_header_bytes or cfg.max_header_fields < 8:
        raise ConfigError(f"{path}: max_header_block_bytes must be >= max_header_bytes "
                          f"({cfg.max_header_bytes}) and max_header_fields >= 8")
    if name == "external" and cfg.trust_forwarded:
        raise ConfigError(f"{path}.trust_forwarded: the external listener never trusts X-Forwarded-*")
    if cfg.port > 65535:
        raise ConfigError(f"{path}.port: must be <= 65535, got {cfg.port}")
    return cfg


def _route(i: int, data: Any, listeners: Mapping[str, ListenerConfig],
           clusters: Mapping[str, ClusterConfig]) -> Route:
    path = f"routes[{i}]"
    allowed = {"name", "listener", "prefix", "path", "methods", "cluster", "rewrite_prefix", "timeouts",
               "retry", "max_body_bytes", "body_timeout", "auth", "ratelimit", "priority", "cache", "handler",
               "partner_scope"}
    d = _check_keys(data, path, allowed)
    if "listener" not in d:
        raise ConfigError(f"{path}.listener: is required")
    if ("prefix" in d) == ("path" in d):
        raise ConfigError(f"{path}.prefix: exactly one of prefix (a path prefix) or path (a template like "
                          "/orders/{id}/price) is required")
    if "cluster" not in d and "handler" not in d:
        raise ConfigError(f"{path}.cluster: is required (or handler: for a route the gateway serves)")
    if "cluster" in d and "handler" in d:
        raise ConfigError(f"{path}.handler: a route has either cluster (proxied) or handler (served "
                          "here), not both")
    listener = _typed(d, "listener", path, str, None)
    if listener not in listeners:
        raise ConfigError(f"{path}.listener: unknown listener {listener!r} (have: {', '.join(listeners)})")
    handler = _typed(d, "handler", path, str, None)
    if handler is not None and handler not in HANDLERS:
        raise ConfigError(f"{path}.handler: unknown handler {handler!r} "
                          f"(have: {', '.join(sorted(HANDLERS))})")
    cluster_name = _typed(d, "cluster", path, str, "")
    if handler is None and cluster_name not in clusters:
        raise ConfigError(f"{path}.cluster: unknown cluster {cluster_name!r} (have: {', '.join(clusters)})")
    key = "prefix" if "prefix" in d else "path"
    prefix = _typed(d, key, path, str, None)
    segments = _template(d, path) if key == "path" else None
    if not prefix.startswith("/"):
        raise ConfigError(f"{path}.{key}: must start with '/', got {prefix!r}")
    if listener == "external" and not prefix.startswith("/partner/"):
        raise ConfigError(f"{path}.{key}: external routes must live under /partner/, got {prefix!r}")
    methods_raw = d.get("methods", sorted(ALL_METHODS))
    if not isinstance(methods_raw, list) or not methods_raw:
        raise ConfigError(f"{path}.methods: must be a non-empty list")
    methods = frozenset(str(m).upper() for m in methods_raw)
    if bad := sorted(methods - ALL_METHODS):
        raise ConfigError(f"{path}.methods: unknown method {bad[0]!r}")
    cluster = clusters.get(cluster_name)
    lst = listeners[listener]
    rewrite = _typed(d, "rewrite_prefix", path, str, None)
    if rewrite is not None and not rewrite.startswith("/"):
        raise ConfigError(f"{path}.rewrite_prefix: must start with '/', got {rewrite!r}")
    return Route(
        name=_typed(d, "name", path, str, prefix),
        listener=listener,
        prefix=prefix,
        methods=methods,
        cluster=cluster_name,
        rewrite_prefix=rewrite,
        timeouts=merge_timeouts(cluster.timeouts if cluster else TimeoutPolicy(), d.get("timeouts"),
                                f"{path}.timeouts"),
        retry=merge_retry(cluster.retry if cluster else RetryPolicy(), d.get("retry"), f"{path}.retry"),
        max_body_bytes=_typed(d, "max_body_bytes", path, int, lst.max_body_bytes),
        body_timeout=_typed(d, "body_timeout", path, float, lst.body_timeout),
        auth=(auth := parse_route_auth(d.get("auth"), f"{path}.auth", methods,
                                       default_required=listener == "external")),
        ratelimit=parse_route_ratelimit(d.get("ratelimit"), f"{path}.ratelimit",
                                        default_enabled=auth.required),
        priority=_priority(d, path, listener),
        cache=parse_route_cache(d.get("cache"), f"{path}.cache", listener=listener,
                                auth_required=auth.required),
        handler=handler,
        partner_scope=_partner_scope(d, path, listener, auth.required),
        segments=segments,
    )


def _template(d: Mapping[str, Any], path: str) -> tuple[str | None, ...]:
    """Route key ``path: /orders/{id}/price`` (segment-wise match; no prefix-based features)."""
    template = _typed(d, "path", path, str, None)
    try:
        segments = parse_template(template)
    except ValueError as exc:
        raise ConfigError(f"{path}.path: {exc}") from None
    for feature in ("rewrite_prefix", "cache", "partner_scope"):
        if feature in d:
            raise ConfigError(f"{path}.{feature}: needs a prefix route (not available with path:)")
    return segments


def _partner_scope(d: Mapping[str, Any], path: str, listener: str, auth_required: bool) -> str | None:
    """Route key ``partner_scope: orders``: only on external routes with auth (it needs the partner)."""
    scope: str | None = _typed(d, "partner_scope", path, str, None)
    if scope is None:
        return None
    if scope not in PARTNER_SCOPES:
        raise ConfigError(f"{path}.partner_scope: must be one of {', '.join(sorted(PARTNER_SCOPES))}, "
                          f"got {scope!r}")
    if listener != "external" or not auth_required:
        raise ConfigError(f"{path}.partner_scope: only for external routes with auth (it needs the partner)")
    if "handler" in d:
        raise ConfigError(f"{path}.partner_scope: scopes proxied orders, not a handler route")
    return scope


def _priority(d: Mapping[str, Any], path: str, listener: str) -> int:
    """Route key ``priority: high|normal|low``; operators (internal) default high, partners normal."""
    name = _typed(d, "priority", path, str, "high" if listener == "internal" else "normal")
    if name not in PRIORITIES:
        raise ConfigError(f"{path}.priority: must be one of {', '.join(PRIORITIES)}, got {name!r}")
    return PRIORITIES[name]


def substitute_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}``; a missing variable without default is an error."""
    env = os.environ if env is None else env

    def repl(m: re.Match[str]) -> str:
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(f"environment variable {m.group(1)} is referenced by the config but not set")

    return _ENV_REF.sub(repl, text)


def parse_config(data: Any, *, source: str = "<memory>") -> GatewayConfig:
    """Validate a YAML document (already loaded) into a GatewayConfig."""
    top = _check_keys(data, "<root>", {"listeners", "admin", "logging", "clusters", "routes",
                                       "drain_timeout", "api_keys", "ratelimit", "cache", "quotes",
                                       "operator_auth"})
    listeners_raw = _check_keys(top.get("listeners"), "listeners", set(LISTENER_NAMES))
    listeners = {name: _listener(name, listeners_raw.get(name)) for name in LISTENER_NAMES
                 if name in listeners_raw}
    if not listeners:
        raise ConfigError("listeners: at least one of external/internal is required")
    admin_raw = _check_keys(top.get("admin"), "admin", {"host", "port"})
    admin = AdminConfig(host=_typed(admin_raw, "host", "admin", str, "127.0.0.1"),
                        port=_typed(admin_raw, "port", "admin", int, 9901))
    log_raw = _check_keys(top.get("logging"), "logging", {"level", "access_log", "app_log"})
    logging_cfg = LoggingConfig(level=_typed(log_raw, "level", "logging", str, "INFO"),
                                access_log=_typed(log_raw, "access_log", "logging", str, None),
                                app_log=_typed(log_raw, "app_log", "logging", str, None))
    clusters_raw = top.get("clusters") or {}
    if not isinstance(clusters_raw, Mapping) or not clusters_raw:
        raise ConfigError("clusters: at least one cluster is required")
    clusters = {str(name): parse_cluster(str(name), spec) for name, spec in clusters_raw.items()}
    routes_raw = top.get("routes") or []
    if not isinstance(routes_raw, list):
        raise ConfigError("routes: must be a list")
    routes = tuple(_route(i, r, listeners, clusters) for i, r in enumerate(routes_raw))
    names = [r.name for r in routes]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"routes: duplicate route name {dup[0]!r}")
    ratelimit = parse_ratelimit_section(top.get("ratelimit"))
    _check_partner_policies(routes, ratelimit)
    quotes = parse_quotes_section(top.get("quotes"))
    if quotes is None and (needs := [r.name for r in routes if r.handler == "quotes"]):
        raise ConfigError(f"quotes: route {needs[0]!r} has handler: quotes, which needs a quotes: section")
    operator_auth = parse_operator_auth_section(top.get("operator_auth"))
    internal = listeners.get("internal")
    if internal is not None and not is_loopback(internal.host) and not operator_auth.tokens:
        raise ConfigError(f"listeners.internal.host: {internal.host!r} is not a loopback address, so "
                          "operators must authenticate: set operator_auth.tokens (e.g. "
                          "${GATEWAY_OPERATOR_TOKENS}) or bind 127.0.0.1")
    return GatewayConfig(listeners=listeners, admin=admin, logging=logging_cfg, clusters=clusters,
                         routes=routes, drain_timeout=_typed(top, "drain_timeout", "<root>", float, 20.0),
                         source=source, api_keys=parse_api_keys_section(top.get("api_keys")),
                         ratelimit=ratelimit, cache=parse_cache_section(top.get("cache")), quotes=quotes,
                         operator_auth=operator_auth)


def _check_partner_policies(routes: tuple[Route, ...], ratelimit: RateLimitConfig) -> None:
    """Rate limits need a partner (auth), and route window names must not shadow tier ones."""
    shared = {w.name for ws in ratelimit.tiers.values() for w in ws}
    shared |= {name for ws in ratelimit.partners.values() for name in ws}
    for i, route in enumerate(routes):
        if route.ratelimit.enabled and not route.auth.required:
            raise ConfigError(f"routes[{i}].ratelimit: limits are per partner, so the route needs auth")
        if clash := sorted(shared & {w.name for w in route.ratelimit.windows}):
            raise ConfigError(f"routes[{i}].ratelimit.limits.{clash[0]}: already a tier/partner window name")


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, substitute ``${ENV}`` references, parse and validate the YAML file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(substitute_env(text, env))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_config(data, source=str(path))
