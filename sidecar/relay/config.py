"""Settings of the CRM → MES relay, frozen and checked on construction (a bad value names its option)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.crc import key_slot

from configkit import check, integer, number
from sharedstate.redis_spec import parse_redis_spec


@dataclass(frozen=True, kw_only=True, slots=True)
class RelayConfig:
    """Where to read CRM orders, how hard to push the MES, when to pause. Times in seconds.

    The in-flight bound follows the MES's latency (``resilience.adaptive.GradientLimit``)
    between ``min_in_flight`` and ``max_in_flight``; it never exceeds ``max_in_flight``.
    """

    redis_url: str
    consumer: str
    stream: str = "crm:orders"
    group: str = "mes-relay"
    group_start_id: str = "0"  # a new group replays the stream: nothing queued before it is lost
    dead_letter_stream: str = "crm:orders:dead"
    status_stream: str = "crm:orders:status"  # DELIVERED statuses back to the CRM; "" = none written
    orders_path: str = "/orders"
    initial_in_flight: int = 4
    min_in_flight: int = 1
    max_in_flight: int = 16
    delivery_timeout: float = 10.0
    limit_sample_window: float = 1.0  # the limit sees one latency sample per window (≥ 10 calls)
    failure_threshold: int = 3  # consecutive failed deliveries → pause
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    batch: int = 50
    block_ms: int = 1000
    reclaim_idle: float = 60.0  # another consumer's pending entry idle this long is claimed
    sweep_interval: float = 5.0  # own pending entries (failed deliveries) are retried this often
    lag_interval: float = 5.0  # queue lag gauges refresh
    drain_timeout: float = 5.0  # at shutdown, deliveries in flight get this long

    def __post_init__(self) -> None:
        spec = parse_redis_spec(self.redis_url, "--relay-redis-url")
        check(bool(self.consumer), "--relay-consumer", "must not be empty")
        check(bool(self.group) and bool(self.stream) and bool(self.dead_letter_stream), "--relay-group",
              "must not be empty (nor the stream names)")
        if spec.kind == "cluster":  # XADD <other stream> + XACK <stream> are one MULTI: one slot
            for option, name in (("--relay-dead-letter-stream", self.dead_letter_stream),
                                 ("--relay-status-stream", self.status_stream)):
                check(not name or key_slot(name.encode()) == key_slot(self.stream.encode()), option,
                      f"must hash to the slot of {self.stream!r} on Redis Cluster, e.g. "
                      f"'{name}:{{{self.stream}}}' (docs/redis.md), got {name!r}")
        integer(self.min_in_flight, "--relay-min-in-flight", minimum=1)
        check(self.min_in_flight <= self.initial_in_flight <= self.max_in_flight, "--relay-max-in-flight",
              f"need 1 <= min ({self.min_in_flight}) <= initial ({self.initial_in_flight}) <= max "
              f"({self.max_in_flight}) in flight")
        number(self.reclaim_idle, "--relay-reclaim-idle", above=0)
        number(self.delivery_timeout, "--relay-timeout", above=0, below=self.reclaim_idle)  # < reclaim idle
        integer(self.failure_threshold, "--relay-failure-threshold", minimum=1)
        number(self.backoff_initial, "backoff_initial", above=0)
        number(self.backoff_max, "--relay-backoff-max", minimum=self.backoff_initial)
        integer(self.batch, "batch", minimum=1)
        integer(self.block_ms, "block_ms", minimum=1)
        number(self.sweep_interval, "sweep_interval", above=0)
        number(self.lag_interval, "lag_interval", above=0)
        number(self.drain_timeout, "drain_timeout", minimum=0)
        number(self.limit_sample_window, "limit_sample_window", above=0)
        check(self.orders_path.startswith("/"), "orders_path",
              f"must start with '/', got {self.orders_path!r}")
