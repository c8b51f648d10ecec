"""The top-level ``usage:`` section: where usage counts live, how long, how often they are flushed.

::

    usage:
      redis_url: redis://127.0.0.1:6379/4   # absent → counted in this process only (one instance)
      key_prefix: mes-edge:usage
      retention_days: 400                   # a day's counts expire this long after its last write
      flush_interval: 0.25                  # s between flushes of the local counts to Redis
      max_range_days: 92                    # GET /partner/v1/usage and the export: longest range
      max_pending_cells: 100000             # (partner, day, kind) cells kept while Redis is away
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from configkit import Section, field_names
from sharedstate.redis_spec import parse_redis_spec
from sharedstate.usage_counts import DEFAULT_PREFIX


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageConfig:
    redis_url: str | None = None
    key_prefix: str = DEFAULT_PREFIX
    retention_days: int = 400
    flush_interval: float = 0.25
    socket_timeout: float = 0.5
    max_range_days: int = 92
    max_pending_cells: int = 100_000


def parse_usage_section(data: Any) -> UsageConfig:
    """Validate ``usage:`` (absent → defaults: in-process counts only)."""
    if data is None:
        return UsageConfig()
    s = Section(data, "usage", field_names(UsageConfig))
    base = UsageConfig()
    cfg = UsageConfig(
        redis_url=s.optional_text("redis_url"),
        key_prefix=s.text("key_prefix", base.key_prefix, non_empty=True),
        retention_days=s.integer("retention_days", base.retention_days, minimum=1, maximum=3660),
        flush_interval=s.number("flush_interval", base.flush_interval, minimum=0.01, maximum=60),
        socket_timeout=s.number("socket_timeout", base.socket_timeout, above=0),
        max_range_days=s.integer("max_range_days", base.max_range_days, minimum=1, maximum=366),
        max_pending_cells=s.integer("max_pending_cells", base.max_pending_cells, minimum=1),
    )
    if cfg.redis_url is not None:
        parse_redis_spec(cfg.redis_url, s.at("redis_url"))
    s.check(not {"{", "}"} & set(cfg.key_prefix), "key_prefix",
            f"must not contain '{{' or '}}' (the partner's hash tag follows it), got {cfg.key_prefix!r}")
    s.check(cfg.max_range_days <= cfg.retention_days, "max_range_days",
            f"must be <= retention_days ({cfg.retention_days})")
    return cfg
