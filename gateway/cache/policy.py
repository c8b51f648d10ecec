"""Cache configuration: the top-level ``cache:`` backend section and the per-route ``cache:`` policy.

Both are parsed once into frozen objects; a bad key fails at start-up naming its full path,
e.g. ``routes[1].cache.ttl: must be > 0``. See ``docs/caching.md`` for the syntax.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from configkit import ConfigError, Section, field_names, mapping, shown, string_list
from sharedstate.redis_spec import parse_redis_spec

#: Responses above this are streamed by the proxy (``gateway.proxy.RESPONSE_BUFFER_LIMIT``): never cached.
MAX_OBJECT_LIMIT = 256 * 1024
#: Longest time an entry may be kept (fresh + stale); version counters outlive it (redis_backend).
MAX_KEEP_FOR = 86400.0
BACKENDS = ("memory", "redis")
UNKNOWN_PARAMS = ("bypass", "ignore")


@dataclass(frozen=True, kw_only=True, slots=True)
class CachePolicy:
    """Per route: how long a response is fresh and which request parts form its key."""

    ttl: float
    #: Query parameters that form the key, with their defaults ("" = none): an absent parameter
    #: and one equal to its default give the same key.
    key_params: Mapping[str, str] = field(default_factory=dict)
    #: A parameter not in ``key_params``: ``bypass`` (not cached, the safe default) or ``ignore``.
    unknown_params: str = "bypass"
    #: The parameter that filters lists by order status (its value picks the status version).
    status_param: str = "status"
    max_object_bytes: int = 128 * 1024
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    #: Key includes ``request[PARTNER_KEY].id``; without a partner the request is not cached.
    vary_partner: bool = False
    #: Honour ``Cache-Control: no-cache``/``max-age=0`` from the client (refetch + store).
    honor_client_no_cache: bool = True

    @property
    def keep_for(self) -> float:
        """How long the store keeps an entry: fresh time plus the longest stale window."""
        return self.ttl + max(self.stale_while_revalidate, self.stale_if_error)


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheConfig:
    """The shared store and the invalidation feed (restart to change)."""

    backend: str = "memory"
    redis_url: str | None = None
    memory_max_bytes: int = 64 * 1024 * 1024
    key_prefix: str = "cache:"
    socket_timeout: float = 0.25
    #: How long concurrent misses wait for the one upstream request (then go upstream themselves).
    collapse_timeout: float = 10.0
    #: Redis whose pub/sub channel carries the sidecar's order-change events (None: no feed).
    events_redis_url: str | None = None
    events_channel: str = "orders:events"


def _key_params(raw: Any, path: str) -> dict[str, str]:
    if isinstance(raw, list):
        raw = dict.fromkeys(string_list(raw, path), "")
    params = mapping(raw, path)
    for name, default in params.items():
        if default is not None and (not isinstance(default, str | int | float) or isinstance(default, bool)):
            raise ConfigError(f"{path}.{name}", f"expected a default (a string or a number) or null, "
                                                f"got {shown(default)}")
    return {str(k): "" if v is None else str(v) for k, v in params.items()}


def parse_route_cache(data: Any, path: str, *, listener: str, auth_required: bool) -> CachePolicy | None:
    """``routes[i].cache`` → policy (None when absent). External routes must vary by partner."""
    if data is None:
        return None
    s = Section(data, path, field_names(CachePolicy))
    s.require("ttl")
    policy = CachePolicy(
        ttl=s.number("ttl", 0.0, above=0),
        key_params=_key_params(s.get("key_params", {}), s.at("key_params")),
        unknown_params=s.choice("unknown_params", "bypass", UNKNOWN_PARAMS),
        status_param=s.text("status_param", "status", non_empty=True),
        max_object_bytes=s.integer("max_object_bytes", 128 * 1024, minimum=1),
        stale_while_revalidate=s.number("stale_while_revalidate", 0.0, minimum=0),
        stale_if_error=s.number("stale_if_error", 0.0, minimum=0),
        vary_partner=s.flag("vary_partner", listener == "external"),
        honor_client_no_cache=s.flag("honor_client_no_cache", listener == "internal"),
    )
    s.check(policy.max_object_bytes <= MAX_OBJECT_LIMIT, "max_object_bytes",
          f"must be <= {MAX_OBJECT_LIMIT} (larger answers are streamed, never cached), "
          f"got {policy.max_object_bytes}")
    s.check(policy.keep_for <= MAX_KEEP_FOR, "",
          f"ttl + the longest stale window must be at most {MAX_KEEP_FOR:.0f} s")
    s.check(listener != "external" or policy.vary_partner, "vary_partner",
          "external routes serve partners their own data; the key must include the partner")
    s.check(not policy.vary_partner or auth_required, "vary_partner",
          "needs auth on the route (the API key names the partner)")
    return policy


def parse_cache_section(data: Any) -> CacheConfig:
    """The top-level ``cache:`` section (defaults: in-memory store, no event feed)."""
    if data is None:
        return CacheConfig()
    s = Section(data, "cache", field_names(CacheConfig))
    base = CacheConfig()
    redis_url = s.optional_text("redis_url")
    cfg = CacheConfig(
        backend=s.choice("backend", base.backend, BACKENDS),
        redis_url=redis_url,
        memory_max_bytes=s.integer("memory_max_bytes", base.memory_max_bytes, minimum=1),
        key_prefix=s.text("key_prefix", base.key_prefix),
        socket_timeout=s.number("socket_timeout", base.socket_timeout, above=0),
        collapse_timeout=s.number("collapse_timeout", base.collapse_timeout, above=0),
        events_redis_url=s.optional_text("events_redis_url", redis_url),
        events_channel=s.text("events_channel", base.events_channel, non_empty=True),
    )
    s.check(cfg.backend != "redis" or bool(cfg.redis_url), "redis_url", "is required with backend: redis")
    for key in ("redis_url", "events_redis_url"):  # one spec for every Redis user (sharedstate)
        if getattr(cfg, key) is not None:
            parse_redis_spec(getattr(cfg, key), s.at(key))
    s.check(not {"{", "}"} & set(cfg.key_prefix), "key_prefix",  # the counters' {v} tag must come first
            f"must not contain '{{' or '}}' (a Redis Cluster hash tag follows it), got {cfg.key_prefix!r}")
    return cfg
