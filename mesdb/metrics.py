"""The archiver's Prometheus metrics (``mesdb archive --every N --metrics-port P``), on the default registry.

Every series exists from start-up (both pass outcomes at 0, the last success at 0 = "none yet"), so
``increase()`` sees the first error and the stalled alert (prometheus/rules/mes-database.yml) can
tell "never succeeded" from "absent". Labels are bounded: ``outcome`` is ``ok`` or ``error``.
Documented in docs/metrics-mesdb.md.
"""

from __future__ import annotations

import time
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

Outcome = Literal["ok", "error"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error")
#: one pass: milliseconds when nothing is due, minutes for a first pass over a large backlog
PASS_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

PASSES = Counter("mesdb_archiver_passes_total", "Archiver passes, by outcome (ok, error).", ("outcome",))
ORDERS_MOVED = Counter(
    "mesdb_archiver_orders_moved_total",
    "Orders moved from orders to orders_archive in verified batches by the archiver.",
)
LAST_SUCCESS = Gauge(
    "mesdb_archiver_last_success_timestamp_seconds",
    "Unix time the last successful archiver pass ended (0: none since start-up).",
)
PASS_DURATION = Histogram(
    "mesdb_archiver_pass_duration_seconds",
    "Duration of one archiver pass (connect, batches, ANALYZE), either outcome.",
    buckets=PASS_BUCKETS,
)
INTERVAL = Gauge(
    "mesdb_archiver_interval_seconds",
    "Seconds between two passes (--every): the stalled alert's threshold is 3 times this.",
)

for _outcome in OUTCOMES:
    PASSES.labels(_outcome)


def observe_pass(outcome: Outcome, *, seconds: float, moved: int = 0) -> None:
    """Record one finished pass (``moved`` orders; only counted when it committed: ``ok``)."""
    PASSES.labels(outcome).inc()
    PASS_DURATION.observe(seconds)
    if outcome == "ok":
        ORDERS_MOVED.inc(moved)
        LAST_SUCCESS.set(time.time())
