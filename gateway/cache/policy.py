"""Cache configuration: the top-level ``cache:`` backend section and the per-route ``cache:`` policy.

Both are parsed once into frozen objects; a bad key fails at start-up naming its full path,
e.g. ``routes[1].cache.ttl: must be > 0``. See ``docs/caching.md`` for the syntax.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ConfigError

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


def _mapping(data: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {type(data).__name__}")
    if unknown := sorted(set(map(str, data)) - allowed):
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return data


def _number(d: Mapping[str, Any], key: str, path: str, default: float, *, positive: bool = False) -> float:
    value = d.get(key, default)
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if bad or value < 0 or (positive and value == 0):
        raise ConfigError(f"{path}.{key}: must be a number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def _choice(d: Mapping[str, Any], key: str, path: str, default: str, choices: tuple[str, ...]) -> str:
    value = d.get(key, default)
    if value not in choices:
        raise ConfigError(f"{path}.{key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _flag(d: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}.{key}: must be true or false, got {value!r}")
    return value


def _key_params(raw: Any, path: str) -> dict[str, str]:
    if isinstance(raw, list):
        raw = dict.fromkeys(raw, "")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: must be a list of names or a mapping name → default")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def parse_route_cache(data: Any, path: str, *, listener: str, auth_required: bool) -> CachePolicy | None:
    """``routes[i].cache`` → policy (None when absent). External routes must vary by partner."""
    if data is None:
        return None
    d = _mapping(data, path, {"ttl", "key_params", "unknown_params", "status_param", "max_object_bytes",
                              "stale_while_revalidate", "stale_if_error", "vary_partner",
                              "honor_client_no_cache"})
    if "ttl" not in d:
        raise ConfigError(f"{path}.ttl: is required")
    policy = CachePolicy(
        ttl=_number(d, "ttl", path, 0, positive=True),
        key_params=_key_params(d.get("key_params", {}), f"{path}.key_params"),
        unknown_params=_choice(d, "unknown_params", path, "bypass", UNKNOWN_PARAMS),
        status_param=str(d.get("status_param", "status")),
        max_object_bytes=int(_number(d, "max_object_bytes", path, 128 * 1024, positive=True)),
        stale_while_revalidate=_number(d, "stale_while_revalidate", path, 0),
        stale_if_error=_number(d, "stale_if_error", path, 0),
        vary_partner=_flag(d, "vary_partner", path, listener == "external"),
        honor_client_no_cache=_flag(d, "honor_client_no_cache", path, listener == "internal"),
    )
    if policy.max_object_bytes > MAX_OBJECT_LIMIT:
        raise ConfigError(f"{path}.max_object_bytes: at most {MAX_OBJECT_LIMIT} (larger answers are "
                          f"streamed, never cached), got {policy.max_object_bytes}")
    if policy.keep_for > MAX_KEEP_FOR:
        raise ConfigError(f"{path}: ttl + the longest stale window must be at most {MAX_KEEP_FOR:.0f} s")
    if listener == "external" and not policy.vary_partner:
        raise ConfigError(f"{path}.vary_partner: external routes serve partners their own data; "
                          "the key must include the partner")
    if policy.vary_partner and not auth_required:
        raise ConfigError(f"{path}.vary_partner: needs auth on the route (the API key names the partner)")
    return policy


def parse_cache_section(data: Any) -> CacheConfig:
    """The top-level ``cache:`` section (defaults: in-memory store, no event feed)."""
    if data is None:
        return CacheConfig()
    path = "cache"
    d = _mapping(data, path, {"backend", "redis_url", "memory_max_bytes", "key_prefix", "socket_timeout",
                              "collapse_timeout", "events_redis_url", "events_channel"})
    base = CacheConfig()
    cfg = CacheConfig(
        backend=_choice(d, "backend", path, base.backend, BACKENDS),
        redis_url=d.get("redis_url") or None,
        memory_max_bytes=int(_number(d, "memory_max_bytes", path, base.memory_max_bytes, positive=True)),
        key_prefix=str(d.get("key_prefix", base.key_prefix)),
        socket_timeout=_number(d, "socket_timeout", path, base.socket_timeout, positive=True),
        collapse_timeout=_number(d, "collapse_timeout", path, base.collapse_timeout, positive=True),
        events_redis_url=d.get("events_redis_url", d.get("redis_url")) or None,
        events_channel=str(d.get("events_channel", base.events_channel)),
    )
    if cfg.backend == "redis" and not cfg.redis_url:
        raise ConfigError("cache.redis_url: is required with backend: redis")
    return cfg
