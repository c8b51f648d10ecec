"""Metrics of the CRM → MES relay (``sidecar_relay_*``), created once on the default registry.

Every series carries ``legacy_instance`` (the sidecar's ``--instance-id``: the MES it delivers
to). The queue gauges describe the whole consumer group (every relay of the group reports the
same values: aggregate with ``max``). Labels are bounded: outcome and reason are fixed sets.
Documented in ``docs/sidecar.md`` ("Relay").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

#: Delivery latency buckets: an order insert takes milliseconds; a struggling MES seconds.
DELIVERY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

QUEUE_LENGTH = Gauge("sidecar_relay_queue_length", "Entries in the CRM stream (XLEN).",
                     ("legacy_instance",), multiprocess_mode="max")
QUEUE_LAG = Gauge("sidecar_relay_queue_lag", "Entries not yet delivered to the relay's consumer group "
                  "(XINFO GROUPS lag; NaN when Redis cannot tell).", ("legacy_instance",),
                  multiprocess_mode="max")
QUEUE_PENDING = Gauge("sidecar_relay_queue_pending", "Entries read by the group but not acknowledged "
                      "(XPENDING): in flight, waiting for a retry, or left by a crashed relay.",
                      ("legacy_instance",), multiprocess_mode="max")
OLDEST_PENDING_AGE = Gauge("sidecar_relay_oldest_pending_age_seconds",
                           "Seconds since the CRM queued the oldest unacknowledged entry (0: none).",
                           ("legacy_instance",), multiprocess_mode="max")
IN_FLIGHT = Gauge("sidecar_relay_in_flight", "Deliveries to the MES in progress.", ("legacy_instance",),
                  multiprocess_mode="livesum")
LIMIT = Gauge("sidecar_relay_limit", "Current adaptive bound on deliveries in flight.", ("legacy_instance",),
              multiprocess_mode="max")
PAUSED = Gauge("sidecar_relay_paused", "1 while the relay has paused deliveries to the MES, else 0.",
               ("legacy_instance",), multiprocess_mode="max")
PAUSES = Counter("sidecar_relay_pauses_total",
                 "Times the relay paused (consecutive failures or a failed probe).", ("legacy_instance",))
DELIVERIES = Counter("sidecar_relay_deliveries_total", "Deliveries to the MES by outcome: created, "
                     "duplicate, rejected, error, timeout, connect_error.", ("legacy_instance", "outcome"))
DELIVERY_DURATION = Histogram("sidecar_relay_delivery_duration_seconds", "POST /orders to the MES, "
                              "request sent to answer read.", ("legacy_instance",), buckets=DELIVERY_BUCKETS)
REDELIVERIES = Counter("sidecar_relay_redeliveries_total", "Entries delivered again: own pending entries "
                       "retried (source=own) or claimed from another consumer (source=claimed).",
                       ("legacy_instance", "source"))
DEAD_LETTERS = Counter("sidecar_relay_dead_letters_total", "Entries moved to the dead-letter stream: "
                       "reason=poison (unparseable envelope) or rejected (the MES answered 4xx).",
                       ("legacy_instance", "reason"))
#: The bounded label values, every one exported at 0 when a relay starts (``increase()`` needs a
#: sample before the first event, or the CrmQueueDeadLetters alert misses the first dead letter).
DELIVERY_OUTCOMES = ("created", "duplicate", "rejected", "error", "timeout", "connect_error")
REDELIVERY_SOURCES = ("own", "claimed")
DEAD_LETTER_REASONS = ("poison", "rejected")
QUEUE_ERRORS = Counter("sidecar_relay_queue_errors_total", "Redis operations of the relay that failed "
                     "(read, ack, dead-letter, lag); retried.", ("legacy_instance",))
STATUS_WRITES = Counter("sidecar_relay_crm_status_writes_total", "DELIVERED statuses written back to the "
                        "CRM (crm:orders:status, atomically with the XACK): success, failure (stays "
                        "pending, retried), skipped (2xx without an order id, or write-back off).",
                        ("legacy_instance", "outcome"))
#: The ``outcome`` label values of ``sidecar_relay_crm_status_writes_total`` (all exported at 0).
STATUS_WRITE_OUTCOMES: tuple[str, ...] = ("success", "failure", "skipped")


@dataclass(frozen=True, slots=True)
class RelayMetrics:
    """The children of one relay, every label set created (at 0) when the relay starts."""

    instance: str
    in_flight: Gauge
    limit: Gauge
    paused: Gauge
    pauses: Counter
    duration: Histogram
    queue_errors: Counter
    length: Gauge
    lag: Gauge
    pending: Gauge
    oldest_pending_age: Gauge

    @classmethod
    def for_instance(cls, instance: str) -> RelayMetrics:
        """Label every per-relay family with ``legacy_instance=instance``."""
        def child(family: Any) -> Any:
            return family.labels(legacy_instance=instance)
        for outcome in DELIVERY_OUTCOMES:
            DELIVERIES.labels(legacy_instance=instance, outcome=outcome)
        for source in REDELIVERY_SOURCES:
            REDELIVERIES.labels(legacy_instance=instance, source=source)
        for reason in DEAD_LETTER_REASONS:
            DEAD_LETTERS.labels(legacy_instance=instance, reason=reason)
        return cls(instance=instance, in_flight=child(IN_FLIGHT), limit=child(LIMIT), paused=child(PAUSED),
                   pauses=child(PAUSES), duration=child(DELIVERY_DURATION), queue_errors=child(QUEUE_ERRORS),
                   length=child(QUEUE_LENGTH), lag=child(QUEUE_LAG), pending=child(QUEUE_PENDING),
                   oldest_pending_age=child(OLDEST_PENDING_AGE))

    def __post_init__(self) -> None:
        for outcome in STATUS_WRITE_OUTCOMES:  # at 0 from start-up: increase() sees the first write
            STATUS_WRITES.labels(legacy_instance=self.instance, outcome=outcome)

    def delivered(self, outcome: str) -> None:
        DELIVERIES.labels(legacy_instance=self.instance, outcome=outcome).inc()

    def redelivered(self, source: str) -> None:
        REDELIVERIES.labels(legacy_instance=self.instance, source=source).inc()

    def status_written(self, outcome: str) -> None:
        STATUS_WRITES.labels(legacy_instance=self.instance, outcome=outcome).inc()

    def dead_lettered(self, reason: str) -> None:
        DEAD_LETTERS.labels(legacy_instance=self.instance, reason=reason).inc()
