"""Every Prometheus metric of the legacy stand-ins, created once on the default registry.

Each stand-in process (MES, CRM, standalone consumer) is one scrape target and serves
``GET /metrics`` itself (``telemetry.metrics_handler()``). Label values are small fixed
sets — an order source, a lifecycle status, an outcome — never an order id.
"""

from __future__ import annotations

from prometheus_client import Counter

from contracts.lifecycle import TRANSITIONS, OrderStatus

__all__ = ["CRM_QUEUE_READS", "CRM_QUEUE_WRITES", "CRM_STATUS_UPDATES", "ORDERS_CREATED", "STATUS_CHANGES",
           "count_status_change"]

ORDERS_CREATED = Counter(
    "orders_created_total",
    "Orders created in the MES (duplicates of a known external_ref are not counted).",
    ("source",),  # b2b | crm
)
STATUS_CHANGES = Counter(
    "orders_status_changes_total",
    "Committed order status changes in the MES, by old and new status.",
    ("from", "to"),
)
CRM_QUEUE_WRITES = Counter(
    "orders_crm_queue_writes_total",
    "Orders the CRM tried to put on the crm:orders stream.",
    ("outcome",),  # success | failure
)
CRM_QUEUE_READS = Counter(
    "orders_crm_queue_reads_total",
    "crm:orders entries the MES consumer handled.",
    ("outcome",),  # created | duplicate | dead_letter | failure
)
CRM_STATUS_UPDATES = Counter(
    "orders_crm_status_updates_total",
    "crm:orders:status entries the CRM applied to its orders.",
    ("outcome",),  # delivered | unknown_order | invalid | failure (a Redis read/write failed)
)

for _source in ("b2b", "crm"):  # export zeros from the start: rate() needs a first sample
    ORDERS_CREATED.labels(source=_source)
for _outcome in ("success", "failure"):
    CRM_QUEUE_WRITES.labels(outcome=_outcome)
for _outcome in ("created", "duplicate", "dead_letter", "failure"):
    CRM_QUEUE_READS.labels(outcome=_outcome)
for _outcome in ("delivered", "unknown_order", "invalid", "failure"):
    CRM_STATUS_UPDATES.labels(outcome=_outcome)
for _old, _targets in TRANSITIONS.items():  # every legal transition at 0 (a fixed, small set)
    for _new in _targets:
        STATUS_CHANGES.labels(_old.value, _new.value)


def count_status_change(old: OrderStatus, new: OrderStatus) -> None:
    """Count one committed transition ``old -> new``."""
    STATUS_CHANGES.labels(old.value, new.value).inc()
