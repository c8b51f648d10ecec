"""Every Prometheus metric of the sidecar, created once on the default registry.

``sidecar_*`` metrics describe the sidecar and its legacy instance and carry
``kind`` (``mes``/``crm``) and ``instance`` (``--instance-id``). ``orders_*`` and
``pricing_*`` describe the MES *database* as the business probes see it: every
MES sidecar with ``--dsn`` reports the same values (aggregate with ``max``, not
``sum``). Labels are bounded: route templates, fixed reason/probe sets, the
eight order statuses, legacy instance ids. Documented in ``docs/sidecar.md``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Request latency buckets: list calls take milliseconds, a legacy price calculation minutes.
REQUEST_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0,
)
PROBE_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``404`` → ``"4xx"``; anything outside 0-599 → ``"other"``."""
    index = status // 100
    return _STATUS_CLASSES[index] if 0 <= index <= 5 else "other"


# ---------------------------------------------------------------- RED (proxy)
REQUESTS = Counter("sidecar_requests_total", "Requests answered by the sidecar, by route template.",
                   ("kind", "legacy_instance", "route", "method", "status_class"))
REQUEST_DURATION = Histogram("sidecar_request_duration_seconds",
                             "Time from request received to response finished (body streamed).",
                             ("kind", "legacy_instance", "route"), buckets=REQUEST_BUCKETS)
UPSTREAM_ERRORS = Counter("sidecar_upstream_errors_total",
                          "Calls to the legacy instance that failed: connect_error, timeout, reset.",
                          ("kind", "legacy_instance", "reason"))
UPSTREAM_ERROR_REASONS = ("connect_error", "timeout", "reset")  # each at 0 per sidecar from start-up
REQUESTS_IN_FLIGHT = Gauge("sidecar_requests_in_flight", "Requests currently being handled.",
                           ("kind", "legacy_instance"), multiprocess_mode="livesum")

# ---------------------------------------------------------------- business probes (MES database)
ORDERS_BY_STATUS = Gauge("orders_by_status", "Orders currently in each status (all eight, 0 when empty).",
                         ("status",), multiprocess_mode="max")
ORDERS_NEW_PER_MINUTE = Gauge("orders_new_per_minute", "Orders created in the last 60 s.",
                              multiprocess_mode="max")
PRICING_IN_PROGRESS = Gauge("pricing_calculations_in_progress",
                            "Price calculations running now (price_calculations.finished_at IS NULL).",
                            ("legacy_instance",), multiprocess_mode="max")
PROBE_DURATION = Histogram("sidecar_probe_duration_seconds", "Duration of one probe query.",
                           ("kind", "legacy_instance", "probe"), buckets=PROBE_BUCKETS)
PROBE_ERRORS = Counter("sidecar_probe_errors_total", "Probe queries that failed (timeout, database down).",
                       ("kind", "legacy_instance", "probe"))
PROBE_LAST_SUCCESS = Gauge("sidecar_probe_last_success_timestamp_seconds",
                           "Unix time of the last successful run of each probe.",
                           ("kind", "legacy_instance", "probe"), multiprocess_mode="max")

# capacity planning (docs/capacity.md), refreshed with the terminal counts
MES_DATABASE_BYTES = Gauge("mes_database_size_bytes", "pg_database_size of the MES database.",
                           multiprocess_mode="max")
MES_ORDERS_ARCHIVE_ROWS = Gauge("mes_orders_archive_rows",
                                "Rows of orders_archive, estimated (pg_class.reltuples); 0 without a split.",
                                multiprocess_mode="max")

# ---------------------------------------------------------------- read replica (--read-dsn)
# label `replica`: host:port of --read-dsn, one per sidecar (sidecar/replica_lag.py says how it is measured)
REPLICA_LAG_BYTES = Gauge("mes_replica_lag_bytes",
                          "WAL the read replica has yet to replay: primary current LSN - replica replay LSN.",
                          ("replica",), multiprocess_mode="max")
REPLICA_LAG_SECONDS = Gauge("mes_replica_lag_seconds",
                            "How old the replica's data can be: 0 when it has replayed all the primary's "
                            "WAL, else now - the newer of its last replayed commit and last caught-up time.",
                            ("replica",), multiprocess_mode="max")

# ---------------------------------------------------------------- order-change events
EVENTS_PUBLISHED = Counter("sidecar_events_published_total", "Order-change events written to Redis.",
                           ("kind", "legacy_instance", "type", "source"))
EVENTS_DUPLICATES = Counter("sidecar_events_duplicates_total",
                            "Events not published because the same change was already published.",
                            ("kind", "legacy_instance", "source"))
EVENTS_PUBLISH_ERRORS = Counter("sidecar_events_publish_errors_total",
                                "Failed attempts to publish an event (Redis down or slow); retried.",
                                ("kind", "legacy_instance"))
EVENTS_DROPPED = Counter("sidecar_events_dropped_total",
                         "Events dropped unpublished because the bounded queue was full (oldest first).",
                         ("kind", "legacy_instance"))
EVENTS_QUEUED = Gauge("sidecar_events_queued", "Events waiting to be published.", ("kind", "legacy_instance"),
                      multiprocess_mode="livesum")


class OldestAgeCollector(Collector):
    """``orders_oldest_age_seconds{status}``, aged at scrape time.

    The probe stores the age the *database* computed (``now() - min(status_changed_at)``) with a
    monotonic reading; a scrape adds the time elapsed since. No clock skew between the sidecar
    and the database can distort it, and it keeps growing between two probe cycles.
    """

    def __init__(self) -> None:
        self._ages: dict[str, float] = {}
        self._measured_at = 0.0

    def update(self, ages: Mapping[str, float]) -> None:
        """Ages in seconds per active status (0 for a status without orders)."""
        self._ages = dict(ages)
        self._measured_at = time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("orders_oldest_age_seconds",
                                   "Seconds since the last status change of the oldest order in each "
                                   "active status (0 when the status is empty).", labels=("status",))
        elapsed = time.monotonic() - self._measured_at
        for status, age in self._ages.items():
            family.add_metric((status,), age + elapsed if age > 0 else 0.0)
        yield family


ORDERS_OLDEST_AGE = OldestAgeCollector()
REGISTRY.register(ORDERS_OLDEST_AGE)
