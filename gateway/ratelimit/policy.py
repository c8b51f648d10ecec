"""Rate-limit policy configuration: named windows per tier, per partner and per route.

YAML (top level and per route)::

    ratelimit:
      redis_url: redis://127.0.0.1:6379/0   # null → in-memory only (one instance)
      default_tier: bronze
      tiers:
        gold:   {burst: 50/second, rate: 1000/minute, quota: 100000/day}
        bronze: {burst: 5/second,  rate: 100/minute,  quota: 5000/day}
      partners:                              # per-partner overrides, merged over the tier
        acme: {quota: 250000/day}
    routes:
      - {name: partner-orders, ..., ratelimit: {on_backend_error: local, limits: {orders-burst: 20/second}}}

Window values use the ``limits`` notation (``10/second``, ``100 per 2 minutes``).
Tier/partner windows count per partner across every rate-limited route; route ``limits``
count per partner *and* route. All of them are checked at once (see ``gateway.ratelimit``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import limits

from gateway.errors import ConfigError

BACKEND_ERROR_MODES = ("local", "open", "closed")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # a structured-field token-ish policy name


@dataclass(frozen=True, slots=True)
class Window:
    """One named quota policy, e.g. ``burst`` = 50 per second (``item`` is a ``limits`` item)."""

    name: str
    item: limits.RateLimitItem

    @property
    def amount(self) -> int:
        return int(self.item.amount)

    @property
    def seconds(self) -> int:
        return int(self.item.get_expiry())


@dataclass(frozen=True, kw_only=True, slots=True)
class RouteRateLimit:
    """Per-route rate-limit options (``routes[i].ratelimit``)."""

    enabled: bool = False
    windows: tuple[Window, ...] = ()
    on_backend_error: str = "local"  # local | open | closed


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitConfig:
    """The top-level ``ratelimit:`` section."""

    redis_url: str | None = None
    key_prefix: str = "gateway:rl"
    socket_timeout: float = 0.1
    heartbeat_interval: float = 2.0
    default_tier: str = "default"
    tiers: Mapping[str, tuple[Window, ...]] = field(
        default_factory=lambda: {"default": parse_windows({"rate": "60/minute"}, "ratelimit.tiers.default")})
    partners: Mapping[str, Mapping[str, Window]] = field(default_factory=dict)

    def windows_for(self, partner: str, tier: str) -> tuple[Window, ...]:
        """The partner-wide windows: its tier's (default tier if unknown), with overrides by name."""
        base = self.tiers.get(tier) or self.tiers[self.default_tier]
        override = self.partners.get(partner)
        if not override:
            return base
        merged = {w.name: w for w in base} | dict(override)
        return tuple(merged.values())


def parse_windows(data: Any, path: str) -> tuple[Window, ...]:
    """``{name: "N/unit", ...}`` → windows, shortest first; names must be short lowercase tokens."""
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"{path}: must be a non-empty mapping of name: 'N/unit'")
    out = []
    for name, spec in data.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{path}.{name}: window names are lowercase tokens like 'burst'")
        try:
            item = limits.parse(str(spec))
        except ValueError:
            raise ConfigError(f"{path}.{name}: cannot parse {spec!r} (use e.g. '10/second')") from None
        if item.amount < 1:
            raise ConfigError(f"{path}.{name}: the amount must be >= 1, got {spec!r}")
        out.append(Window(name, item))
    return tuple(sorted(out, key=lambda w: (w.seconds, w.name)))  # shortest window first


def _number(d: Mapping[str, Any], key: str, path: str, default: float, low: float, high: float) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{path}.{key}: must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def parse_ratelimit_section(data: Any) -> RateLimitConfig:
    """Validate the top-level ``ratelimit:`` mapping (absent → in-memory defaults)."""
    if data is None:
        return RateLimitConfig()
    allowed = {"redis_url", "key_prefix", "socket_timeout", "heartbeat_interval", "default_tier",
               "tiers", "partners"}
    if not isinstance(data, Mapping):
        raise ConfigError("ratelimit: must be a mapping")
    if unknown := sorted(set(map(str, data)) - allowed):
        raise ConfigError(f"ratelimit: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    redis_url = data.get("redis_url") or None
    if redis_url is not None and not str(redis_url).startswith("redis://"):  # TCP only (RespPipe)
        raise ConfigError(f"ratelimit.redis_url: must be a redis:// URL, got {redis_url!r}")
    tiers_raw = data.get("tiers")
    if tiers_raw is None:
        tiers = dict(RateLimitConfig().tiers)
    elif not isinstance(tiers_raw, Mapping) or not tiers_raw:
        raise ConfigError("ratelimit.tiers: must be a non-empty mapping of tier: windows")
    else:
        tiers = {str(t): parse_windows(w, f"ratelimit.tiers.{t}") for t, w in tiers_raw.items()}
    if "default_tier" not in data and "default" not in tiers:
        raise ConfigError("ratelimit.default_tier: is required when no tier is named 'default'")
    default_tier = str(data.get("default_tier", "default"))
    if default_tier not in tiers:
        raise ConfigError(f"ratelimit.default_tier: unknown tier {default_tier!r} (have: {', '.join(tiers)})")
    partners_raw = data.get("partners") or {}
    if not isinstance(partners_raw, Mapping):
        raise ConfigError("ratelimit.partners: must be a mapping of partner id: windows")
    partners = {str(p): {w.name: w for w in parse_windows(w, f"ratelimit.partners.{p}")}
                for p, w in partners_raw.items()}
    prefix = data.get("key_prefix", "gateway:rl")
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError(f"ratelimit.key_prefix: must be a non-empty string, got {prefix!r}")
    return RateLimitConfig(
        redis_url=str(redis_url) if redis_url else None, key_prefix=prefix,
        socket_timeout=_number(data, "socket_timeout", "ratelimit", 0.1, 0.005, 5.0),
        heartbeat_interval=_number(data, "heartbeat_interval", "ratelimit", 2.0, 0.1, 60.0),
        default_tier=default_tier, tiers=tiers, partners=partners)


def parse_route_ratelimit(data: Any, path: str, *, default_enabled: bool) -> RouteRateLimit:
    """``routes[i].ratelimit``: ``false`` / ``true`` / ``{limits, on_backend_error}``."""
    if data is None:
        return RouteRateLimit(enabled=default_enabled)
    if isinstance(data, bool):
        return RouteRateLimit(enabled=data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be true, false or a mapping")
    allowed = {"enabled", "limits", "on_backend_error"}
    if unknown := sorted(set(map(str, data)) - allowed):
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    mode = data.get("on_backend_error", "local")
    if mode not in BACKEND_ERROR_MODES:
        raise ConfigError(f"{path}.on_backend_error: must be one of {', '.join(BACKEND_ERROR_MODES)}, "
                          f"got {mode!r}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{path}.enabled: must be true or false, got {enabled!r}")
    windows = parse_windows(data["limits"], f"{path}.limits") if "limits" in data else ()
    return RouteRateLimit(enabled=enabled, windows=windows, on_backend_error=mode)
