"""The ``quotes:`` section: the gateway side of the pricing job API (docs/pricing.md).

YAML::

    quotes:
      redis_url: ${PRICING_REDIS_URL:-redis://127.0.0.1:56379/2}
      prefix: pricing              # Redis key prefix shared with the workers
      shards: 1                    # queue shards (docs/redis.md, Pricing queue); workers' --shards >= it
      rules_version: legacy-1      # bump when the legacy price rules change: new fingerprints
      backlog_bound: 500           # queued + running jobs above which new work gets 503
      retry_after: 30              # seconds, on that 503
      materials: [PLA, ABS, PETG, NYLON, RESIN, TITANIUM]
      callback_hosts: []           # webhook host allow-list (suffix match); empty = any public host
      allow_private_callbacks: false  # true: also private/loopback targets (the workers' flag too)
      model_ttl: 21600             # s a stored model may wait for a worker (deleted when its job ends)
      model_store_bytes: 268435456 # all stored models together; above it new models get 503
      parse_workers: 2             # model-check processes per gateway process
      parse_cpu_seconds: 10        # CPU time of one model check (RLIMIT_CPU); over it → 422
      parse_memory_bytes: 1073741824  # address space of a model-check process (RLIMIT_AS)
      parse_timeout: 30            # s waiting for a free check process + the check itself; over → 503
      ascii_max_bytes: 8388608     # ASCII STL size cap (binary: the route's max_body_bytes)
      max_triangles: 2000000       # triangles of one model, binary or ASCII
      upload_bytes: 335544320      # upload bytes one gateway process receives/checks at once (503 above)
      upload_partner_bytes: 167772160  # ... of one partner (429 above; operators: upload_bytes only)
      upload_deadline: 300         # s for a whole upload body to arrive (408 after; body_timeout: idle)
      failover_wait: 10            # s a submission/read waits out a Redis failover before its 503 (0: none)
      fair_window: 2               # fair scheduling across partners (> 0; 0: one FIFO stream)
      fair_quantum: 5              # jobs per round-robin turn of a partner of weight 1
      tier_weights: {gold: 4}      # a tier's weight: turns of fair_quantum jobs (others: 1)
    routes:
      - {name: partner-quotes, listener: external, prefix: /partner/v1/quotes, methods: [GET, POST],
         handler: quotes, max_body_bytes: 52428800,
         auth: {scopes: {GET: [quotes:read], POST: [quotes:write]}}}

A route with ``handler: quotes`` is answered by the gateway itself (``gateway/quotes/api.py``);
its ``max_body_bytes`` is the model size limit. Changes need a restart (like ``redis_url``s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from configkit import Section, check, field_names, integer, mapping, string_list
from contracts.materials import MATERIAL_NAMES
from legacy_adapters.redis_keys import MAX_SHARDS
from sharedstate.redis_spec import parse_redis_spec

HANDLERS = frozenset({"quotes", "usage"})  # usage: gateway/usage/api.py
_INTS = {"backlog_bound": 1, "job_ttl": 60, "model_ttl": 60, "idempotency_ttl": 60, "inflight_ttl": 60,
         "model_store_bytes": 1 << 20, "parse_workers": 1, "parse_cpu_seconds": 1,
         "parse_memory_bytes": 256 << 20, "ascii_max_bytes": 1024, "max_triangles": 1,
         "upload_bytes": 1 << 20, "upload_partner_bytes": 1 << 20, "fair_window": 0,
         "fair_quantum": 1}
_NUMBERS = {"retry_after": 1, "probe_interval": 0.1, "parse_timeout": 0.1, "upload_deadline": 1,
            "failover_wait": 0}


@dataclass(frozen=True, kw_only=True, slots=True)
class QuotesConfig:
    """Validated ``quotes:`` options."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "pricing"
    shards: int = 1
    rules_version: str = "legacy-1"
    backlog_bound: int = 500
    retry_after: float = 30.0
    job_ttl: int = 7 * 86400
    model_ttl: int = 6 * 3600
    idempotency_ttl: int = 86400
    inflight_ttl: int = 7200
    probe_interval: float = 5.0
    materials: frozenset[str] = field(default_factory=lambda: frozenset(MATERIAL_NAMES))
    callback_hosts: tuple[str, ...] = ()
    allow_private_callbacks: bool = False
    model_store_bytes: int = 256 << 20
    parse_workers: int = 2
    parse_cpu_seconds: int = 10
    parse_memory_bytes: int = 1 << 30
    parse_timeout: float = 30.0
    ascii_max_bytes: int = 8 << 20
    max_triangles: int = 2_000_000
    upload_bytes: int = 320 << 20
    upload_partner_bytes: int = 160 << 20
    upload_deadline: float = 300.0
    failover_wait: float = 10.0  # s a submission/read waits out a Redis failover before its 503
    fair_window: int = 2  # docs/pricing.md, "Fair scheduling across partners" (0: one FIFO)
    fair_quantum: int = 5  # jobs per turn of weight 1
    tier_weights: dict[str, int] = field(default_factory=dict)  # tier → weight (others: 1)

    def jobs_per_turn(self, tier: str) -> int:
        """A partner's quantum in the deficit round robin: ``fair_quantum`` x its tier's weight."""
        return self.fair_quantum * self.tier_weights.get(tier, 1)


def parse_quotes_section(data: Any) -> QuotesConfig | None:
    """Validate the top-level ``quotes:`` mapping (absent → no job API)."""
    if data is None:
        return None
    s = Section(data, "quotes", field_names(QuotesConfig))
    base = QuotesConfig()
    values: dict[str, Any] = {key: s.text(key, getattr(base, key), non_empty=True, numbers=True)
                              for key in ("redis_url", "prefix", "rules_version")}
    parse_redis_spec(values["redis_url"], s.at("redis_url"))
    for key, minimum in _INTS.items():
        values[key] = s.integer(key, getattr(base, key), minimum=minimum)
    values["shards"] = s.integer("shards", base.shards, minimum=1, maximum=MAX_SHARDS)
    for key, low in _NUMBERS.items():
        values[key] = s.number(key, getattr(base, key), minimum=low)
    if "materials" in s:
        values["materials"] = frozenset(m.upper() for m in string_list(s.get("materials"), s.at("materials"),
                                                                        non_empty=True))
    if "callback_hosts" in s:
        hosts = string_list(s.get("callback_hosts") or [], s.at("callback_hosts"))
        values["callback_hosts"] = tuple(h.lower().lstrip(".") for h in hosts)
    if "tier_weights" in s:
        weights = mapping(s.get("tier_weights") or {}, s.at("tier_weights"))
        values["tier_weights"] = {str(tier): integer(w, f"{s.at('tier_weights')}.{tier}", minimum=1,
                                                     maximum=1000) for tier, w in weights.items()}
    values["allow_private_callbacks"] = s.flag("allow_private_callbacks", base.allow_private_callbacks)
    cfg = QuotesConfig(**values)
    check(cfg.upload_partner_bytes <= cfg.upload_bytes, s.at("upload_partner_bytes"),
          f"must be <= quotes.upload_bytes ({cfg.upload_bytes}), got {cfg.upload_partner_bytes}")
    return cfg
