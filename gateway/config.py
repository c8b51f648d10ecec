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

from configkit import ConfigError, Section, check, field_names, mapping, shown, string_list
from gateway.auth.operator_tokens import OperatorAuthConfig, is_loopback, parse_operator_auth_section
from gateway.auth.policy import ApiKeysConfig, parse_api_keys_section, parse_route_auth
from gateway.cache.policy import CacheConfig, parse_cache_section, parse_route_cache
from gateway.quotes.config import HANDLERS, QuotesConfig, parse_quotes_section
from gateway.ratelimit.policy import RateLimitConfig, parse_ratelimit_section, parse_route_ratelimit
from gateway.route_table import ALL_METHODS, PARTNER_SCOPES, Route, parse_template
from gateway.upstreams.config import (
    ClusterConfig,
    RetryPolicy,
    TimeoutPolicy,
    merge_retry,
    merge_timeouts,
    parse_cluster,
)
from gateway.usage.config import UsageConfig, parse_usage_section
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
    usage: UsageConfig = field(default_factory=UsageConfig)  # per-partner usage counts (gateway/usage/)
    source: str = field(default="<memory>")

    def routes_for(self, listener: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.listener == listener)


_ROUTE_KEYS = {"name", "listener", "prefix", "path", "methods", "cluster", "rewrite_prefix", "timeouts",
               "retry", "max_body_bytes", "body_timeout", "auth", "ratelimit", "priority", "cache", "handler",
               "partner_scope", "usage"}
_TOP_KEYS = {"listeners", "admin", "logging", "clusters", "routes", "drain_timeout", "api_keys", "ratelimit",
             "cache", "quotes", "operator_auth", "usage"}


def _header_names(s: Section, *, default: frozenset[str] | None) -> frozenset[str] | None:
    if s.get("forward_request_headers") is None:
        return default
    return frozenset(h.strip().lower() for h in string_list(s.get("forward_request_headers"),
                                                            s.at("forward_request_headers")))


def _listener(name: str, data: Any) -> ListenerConfig:
    s = Section(data, f"listeners.{name}", field_names(ListenerConfig, without={"name"}))
    base = ListenerConfig(name=name)
    cfg = ListenerConfig(
        name=name,
        host=s.text("host", base.host),
        port=s.integer("port", base.port, minimum=0, maximum=65535),
        trust_forwarded=s.flag("trust_forwarded", base.trust_forwarded),
        keepalive_timeout=s.number("keepalive_timeout", base.keepalive_timeout, minimum=0),
        max_body_bytes=s.integer("max_body_bytes", base.max_body_bytes, minimum=0),
        body_timeout=s.number("body_timeout", base.body_timeout, minimum=0),
        max_header_bytes=s.integer("max_header_bytes", base.max_header_bytes, minimum=0),
        max_header_block_bytes=s.integer("max_header_block_bytes", base.max_header_block_bytes, minimum=0),
        max_header_fields=s.integer("max_header_fields", base.max_header_fields, minimum=8),
        forward_request_headers=_header_names(s, default=PARTNER_REQUEST_HEADERS if name == "external"
                                              else None),
    )
    s.check(cfg.max_header_block_bytes >= cfg.max_header_bytes, "max_header_block_bytes",
          f"must be >= max_header_bytes ({cfg.max_header_bytes}), got {cfg.max_header_block_bytes}")
    s.check(name != "external" or not cfg.trust_forwarded, "trust_forwarded",
          "the external listener never trusts X-Forwarded-*")
    return cfg


def _route(i: int, data: Any, listeners: Mapping[str, ListenerConfig],
           clusters: Mapping[str, ClusterConfig]) -> Route:
    s = Section(data, f"routes[{i}]", _ROUTE_KEYS)
    s.require("listener")
    s.check(("prefix" in s) != ("path" in s), "prefix",
          "exactly one of prefix (a path prefix) or path (a template like /orders/{id}/price) is required")
    s.check("cluster" in s or "handler" in s, "cluster",
          "is required (or handler: for a route the gateway serves)")
    s.check(not ("cluster" in s and "handler" in s), "handler",
          "a route has either cluster (proxied) or handler (served here), not both")
    listener = s.text("listener", "")
    if listener not in listeners:  # (if-raise, not check(): the message is built only when needed)
        raise s.error("listener", f"unknown listener {listener!r} (have: {', '.join(listeners)})")
    handler = s.text("handler", None)
    if handler is not None and handler not in HANDLERS:
        raise s.error("handler", f"unknown handler {handler!r} (have: {', '.join(sorted(HANDLERS))})")
    cluster_name = s.text("cluster", "")
    if handler is None and cluster_name not in clusters:
        raise s.error("cluster", f"unknown cluster {cluster_name!r} (have: {', '.join(clusters)})")
    key = "prefix" if "prefix" in s else "path"
    prefix = s.text(key, "")
    segments = _template(s) if key == "path" else None
    s.check(prefix.startswith("/"), key, f"must start with '/', got {prefix!r}")
    s.check(listener != "external" or prefix.startswith("/partner/"), key,
          f"external routes must live under /partner/, got {prefix!r}")
    methods = frozenset(m.upper() for m in string_list(s.get("methods", sorted(ALL_METHODS)), s.at("methods"),
                                                        non_empty=True))
    if bad := sorted(methods - ALL_METHODS):
        raise s.error("methods", f"unknown method {bad[0]!r}")
    cluster = clusters.get(cluster_name)
    lst = listeners[listener]
    rewrite = s.text("rewrite_prefix", None)
    s.check(rewrite is None or rewrite.startswith("/"), "rewrite_prefix",
          f"must start with '/', got {rewrite!r}")
    return Route(
        name=s.text("name", prefix),
        listener=listener,
        prefix=prefix,
        methods=methods,
        cluster=cluster_name,
        rewrite_prefix=rewrite,
        timeouts=merge_timeouts(cluster.timeouts if cluster else TimeoutPolicy(), s.get("timeouts"),
                                s.at("timeouts")),
        retry=merge_retry(cluster.retry if cluster else RetryPolicy(), s.get("retry"), s.at("retry")),
        max_body_bytes=s.integer("max_body_bytes", lst.max_body_bytes, minimum=0),
        body_timeout=s.number("body_timeout", lst.body_timeout, minimum=0),
        auth=(auth := parse_route_auth(s.get("auth"), s.at("auth"), methods,
                                       default_required=listener == "external")),
        ratelimit=parse_route_ratelimit(s.get("ratelimit"), s.at("ratelimit"), default_enabled=auth.required),
        priority=PRIORITIES[s.choice("priority", "high" if listener == "internal" else "normal", PRIORITIES)],
        cache=parse_route_cache(s.get("cache"), s.at("cache"), listener=listener,
                                auth_required=auth.required),
        handler=handler,
        partner_scope=_partner_scope(s, listener, auth.required),
        segments=segments,
        usage=_usage(s, prefix),
    )


def _usage(s: Section, prefix: str) -> bool:
    """Route key ``usage: false``: not counted — never on the partner API document's routes, whose
    every request is billable usage (docs/partner-api.md#usage)."""
    counted = bool(s.flag("usage", True))
    s.check(counted or not (prefix + "/").startswith("/partner/v1/"), "usage",
            "the partner API's routes (/partner/v1/...) are always counted")
    return counted


def _template(s: Section) -> tuple[str | None, ...]:
    """Route key ``path: /orders/{id}/price`` (segment-wise match; no prefix-based features)."""
    try:
        segments = parse_template(s.text("path", ""))
    except ValueError as exc:
        raise s.error("path", str(exc)) from None
    for feature in ("rewrite_prefix", "cache", "partner_scope"):
        s.check(feature not in s, feature, "needs a prefix route (not available with path:)")
    return segments


def _partner_scope(s: Section, listener: str, auth_required: bool) -> str | None:
    """Route key ``partner_scope: orders``: only on external routes with auth (it needs the partner)."""
    scope = s.choice("partner_scope", None, sorted(PARTNER_SCOPES))
    if scope is None:
        return None
    s.check(listener == "external" and auth_required, "partner_scope",
          "only for external routes with auth (it needs the partner)")
    s.check("handler" not in s, "partner_scope", "scopes proxied orders, not a handler route")
    return scope


def substitute_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}``; a missing variable without default is an error."""
    env = os.environ if env is None else env

    def repl(m: re.Match[str]) -> str:
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(f"${{{m.group(1)}}}", "the config references this environment variable, "
                          "which is not set (and has no :-default)")

    return _ENV_REF.sub(repl, text)


def parse_config(data: Any, *, source: str = "<memory>") -> GatewayConfig:
    """Validate a YAML document (already loaded) into a GatewayConfig."""
    top = Section(data, "", _TOP_KEYS)
    listeners_raw = top.section("listeners", LISTENER_NAMES)
    listeners = {name: _listener(name, listeners_raw.get(name)) for name in LISTENER_NAMES
                 if name in listeners_raw}
    check(bool(listeners), "listeners", "at least one of external/internal is required")
    admin_raw = top.section("admin", field_names(AdminConfig))
    admin = AdminConfig(host=admin_raw.text("host", "127.0.0.1"),
                        port=admin_raw.integer("port", 9901, minimum=0, maximum=65535))
    log_raw = top.section("logging", field_names(LoggingConfig))
    logging_cfg = LoggingConfig(level=log_raw.text("level", "INFO"),
                                access_log=log_raw.text("access_log", None),
                                app_log=log_raw.text("app_log", None))
    clusters_raw = mapping(top.get("clusters") or {}, "clusters")
    check(bool(clusters_raw), "clusters", "at least one cluster is required")
    clusters = {str(name): parse_cluster(str(name), spec) for name, spec in clusters_raw.items()}
    routes_raw = top.get("routes") or []
    check(isinstance(routes_raw, list), "routes", f"expected a list, got {shown(routes_raw)}")
    routes = tuple(_route(i, r, listeners, clusters) for i, r in enumerate(routes_raw))
    names = [r.name for r in routes]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"routes[{names.index(dup[0], names.index(dup[0]) + 1)}].name",
                          f"duplicate route name {dup[0]!r}")
    ratelimit = parse_ratelimit_section(top.get("ratelimit"))
    _check_partner_policies(routes, ratelimit)
    quotes = parse_quotes_section(top.get("quotes"))
    if quotes is None and (needs := [r.name for r in routes if r.handler == "quotes"]):
        raise ConfigError("quotes", f"route {needs[0]!r} has handler: quotes, which needs a quotes: section")
    if quotes is not None and quotes.shards > 1:  # each shard stores models within its share
        share = quotes.model_store_bytes // quotes.shards
        for r in routes:
            check(r.handler != "quotes" or r.max_body_bytes <= share, "quotes.model_store_bytes",
                  f"each of the {quotes.shards} shards stores models within {share} bytes, less than route "
                  f"{r.name!r}'s max_body_bytes ({r.max_body_bytes}): at least shards x the largest model")
    operator_auth = parse_operator_auth_section(top.get("operator_auth"))
    internal = listeners.get("internal")
    if internal is not None and not is_loopback(internal.host) and not operator_auth.tokens:
        raise ConfigError("listeners.internal.host", f"{internal.host!r} is not a loopback address, so "
                          "operators must authenticate: set operator_auth.tokens (e.g. "
                          "${GATEWAY_OPERATOR_TOKENS}) or bind 127.0.0.1")
    return GatewayConfig(listeners=listeners, admin=admin, logging=logging_cfg, clusters=clusters,
                         routes=routes, drain_timeout=top.number("drain_timeout", 20.0, minimum=0),
                         source=source, api_keys=parse_api_keys_section(top.get("api_keys")),
                         ratelimit=ratelimit, cache=parse_cache_section(top.get("cache")), quotes=quotes,
                         operator_auth=operator_auth, usage=parse_usage_section(top.get("usage")))


def _check_partner_policies(routes: tuple[Route, ...], ratelimit: RateLimitConfig) -> None:
    """Rate limits need a partner (auth), and route window names must not shadow tier ones."""
    shared = {w.name for ws in ratelimit.tiers.values() for w in ws}
    shared |= {name for ws in ratelimit.partners.values() for name in ws}
    for i, route in enumerate(routes):
        check(not route.ratelimit.enabled or route.auth.required, f"routes[{i}].ratelimit",
              "limits are per partner, so the route needs auth")
        if clash := sorted(shared & {w.name for w in route.ratelimit.windows}):
            raise ConfigError(f"routes[{i}].ratelimit.limits.{clash[0]}",
                              "already a tier/partner window name")


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, substitute ``${ENV}`` references, parse and validate the YAML file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(substitute_env(text, env))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"invalid YAML: {exc}") from None
    return parse_config(data, source=str(path))
