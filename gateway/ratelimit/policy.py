"""Rate-limit policy configuration: named windows per tier, per partner and per route.

YAML (top level and per route)::

    ratelimit:
      redis_url: redis://127.0.0.1:6379/0   # null → in-memory only; any Redis spec (docs/configuration.md)
      hot_path: auto                         # auto | pipe | redis-py: the client of the per-request script
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

from configkit import ConfigError, Section, check, field_names, mapping, shown, text
from sharedstate.redis_spec import parse_redis_spec

BACKEND_ERROR_MODES = ("local", "open", "closed")
HOT_PATH_CLIENTS = ("auto", "pipe", "redis-py")
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
    hot_path: str = "auto"  # auto: RespPipe on redis://, redis-py on every other spec kind
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
    windows = mapping(data, path)
    check(bool(windows), path, "must be a non-empty mapping of name: 'N/unit'")
    out = []
    for name, spec in windows.items():
        here = f"{path}.{name}"
        check(isinstance(name, str) and bool(_NAME.match(name)), here,
              "window names are lowercase tokens like 'burst'")
        try:
            item = limits.parse(text(spec, here))
        except ValueError:
            raise ConfigError(here, f"cannot parse {shown(spec)} (use e.g. '10/second')") from None
        check(item.amount >= 1, here, f"the amount must be >= 1, got {shown(spec)}")
        out.append(Window(name, item))
    return tuple(sorted(out, key=lambda w: (w.seconds, w.name)))  # shortest window first


def parse_ratelimit_section(data: Any) -> RateLimitConfig:
    """Validate the top-level ``ratelimit:`` mapping (absent → in-memory defaults)."""
    if data is None:
        return RateLimitConfig()
    s = Section(data, "ratelimit", field_names(RateLimitConfig))
    redis_url = s.optional_text("redis_url")
    spec = parse_redis_spec(redis_url, s.at("redis_url")) if redis_url is not None else None
    hot_path = s.choice("hot_path", "auto", HOT_PATH_CLIENTS)
    s.check(hot_path != "pipe" or spec is None or spec.plain_tcp, "hot_path",
            f"pipe speaks to one server over plain TCP only (redis://), not {spec.shown if spec else ''}")
    if s.get("tiers") is None:
        tiers = dict(RateLimitConfig().tiers)
    else:
        tiers_raw = mapping(s.get("tiers"), s.at("tiers"))
        s.check(bool(tiers_raw), "tiers", "must be a non-empty mapping of tier: windows")
        tiers = {str(t): parse_windows(w, s.at(f"tiers.{t}")) for t, w in tiers_raw.items()}
    s.check("default_tier" in s or "default" in tiers, "default_tier",
          "is required when no tier is named 'default'")
    default_tier = s.text("default_tier", "default", numbers=True)
    s.check(default_tier in tiers, "default_tier",
          f"unknown tier {default_tier!r} (have: {', '.join(tiers)})")
    key_prefix = s.text("key_prefix", "gateway:rl", non_empty=True)
    s.check(not {"{", "}"} & set(key_prefix), "key_prefix",  # the partner's hash tag must come first
          f"must not contain '{{' or '}}' (the counters' hash tag follows it), got {shown(key_prefix)}")
    partners = {str(p): {w.name: w for w in parse_windows(w, s.at(f"partners.{p}"))}
                for p, w in mapping(s.get("partners") or {}, s.at("partners")).items()}
    return RateLimitConfig(
        redis_url=redis_url, hot_path=hot_path, key_prefix=key_prefix,
        socket_timeout=s.number("socket_timeout", 0.1, minimum=0.005, maximum=5.0),
        heartbeat_interval=s.number("heartbeat_interval", 2.0, minimum=0.1, maximum=60.0),
        default_tier=default_tier, tiers=tiers, partners=partners)


def parse_route_ratelimit(data: Any, path: str, *, default_enabled: bool) -> RouteRateLimit:
    """``routes[i].ratelimit``: ``false`` / ``true`` / ``{limits, on_backend_error}``."""
    if data is None:
        return RouteRateLimit(enabled=default_enabled)
    if isinstance(data, bool):
        return RouteRateLimit(enabled=data)
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected true, false or a mapping, got {shown(data)}")
    s = Section(data, path, {"enabled", "limits", "on_backend_error"})
    windows = parse_windows(s.get("limits"), s.at("limits")) if "limits" in s else ()
    return RouteRateLimit(enabled=s.flag("enabled", True), windows=windows,
                          on_backend_error=s.choice("on_backend_error", "local", BACKEND_ERROR_MODES))
