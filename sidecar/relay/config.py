"""Settings of the CRM → MES relay, frozen and checked on construction (a bad value names itself)."""

from __future__ import annotations

from dataclasses import dataclass


class RelayConfigError(ValueError):
    """A bad relay setting; the message names the command-line option."""


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
        checks = {
            "--relay-redis-url": "://" in self.redis_url,
            "--relay-consumer": bool(self.consumer),
            "--relay-group": bool(self.group) and bool(self.stream) and bool(self.dead_letter_stream),
            "--relay-max-in-flight": 1 <= self.min_in_flight <= self.initial_in_flight <= self.max_in_flight,
            "--relay-timeout": 0 < self.delivery_timeout < self.reclaim_idle,
            "--relay-failure-threshold": self.failure_threshold >= 1,
            "--relay-backoff-max": 0 < self.backoff_initial <= self.backoff_max,
            "--relay-batch": self.batch >= 1 and self.block_ms >= 1,
            "--relay-reclaim-idle": self.reclaim_idle > 0,
            "--relay-sweep-interval": self.sweep_interval > 0 and self.lag_interval > 0,
            "drain_timeout": self.drain_timeout >= 0,
            "limit_sample_window": self.limit_sample_window > 0,
            "orders_path": self.orders_path.startswith("/"),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise RelayConfigError(
                f"invalid relay option(s): {', '.join(bad)} (need 1 <= min <= initial <= max in flight, "
                "0 < timeout < reclaim idle, 0 < backoff <= backoff max)")
