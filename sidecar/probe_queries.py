"""The SQL of the business probes, and the one read-replica index they are designed for.

Every query is a constant (the planner sees the literal status lists, so it can
prove that the partial index's predicate is implied) or takes only an id
watermark. Plans and timings on 1,000,000 orders: ``docs/sidecar.md``.
"""

from __future__ import annotations

from contracts.lifecycle import TERMINAL_STATUS_NAMES as TERMINAL_STATUSES

# S608 flags the f-strings below: they only join the constant status names
_TERMINAL_LIST = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)

#: Proposed DBA change (not a legacy code change): a small partial index holding only active
#: orders. Create it on the primary (a physical standby replicates it); the probes work without it.
ACTIVE_ORDERS_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_active_status_changed_idx "
    f"ON orders (status, status_changed_at) WHERE status NOT IN ({_TERMINAL_LIST})"
)

#: Active statuses: count and age of the oldest order (seconds since its last status change).
#: With the index: an index-only scan of a few thousand entries. Without: a sequential scan.
ACTIVE_ORDERS = (
    "SELECT status, count(*) AS orders, "  # noqa: S608
    "extract(epoch FROM now() - min(status_changed_at))::float8 AS oldest_age_s "
    f"FROM orders WHERE status NOT IN ({_TERMINAL_LIST}) GROUP BY status"
)

#: Terminal statuses: exact counts by a sequential scan, so run far less often than the rest.
TERMINAL_ORDERS = (
    "SELECT status, count(*) AS orders FROM orders "  # noqa: S608
    f"WHERE status IN ({_TERMINAL_LIST}) GROUP BY status"
)

#: The database's size on disk (a stat of its files) and the archive table's row estimate
#: (``reltuples``, kept by ANALYZE: the archiver analyses after each pass; 0 without a split).
DATABASE_SIZE = (
    "SELECT pg_database_size(current_database())::float8 AS bytes, "
    "coalesce((SELECT greatest(reltuples, 0) FROM pg_class WHERE relname = 'orders_archive' "
    "AND relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace), 0)::float8 AS archived"
)

#: The database clock and the newest order id: a backward scan of the primary key, one row.
ORDERS_WATERMARK = "SELECT now() AS at, (SELECT max(id) FROM orders) AS max_id"

#: Orders created in the last minute, looking only at ids above a watermark taken >= 1 min ago
#: (ids grow with creation time): a primary-key range scan of the last minute's rows.
NEW_ORDERS = (
    "SELECT count(*) AS orders FROM orders WHERE id > $1 AND created_at > now() - interval '1 minute'"
)

#: The newest price calculation id (primary key, one row).
PRICING_WATERMARK = "SELECT coalesce(max(id), 0) FROM price_calculations"

#: Price calculations running right now, per legacy instance, among ids >= a watermark: the
#: lowest id still running at the previous probe (or the then newest id), minus a safety margin.
PRICING_IN_PROGRESS = (
    "SELECT instance_id, count(*) AS running, min(id) AS first_id FROM price_calculations "
    "WHERE id >= $1 AND finished_at IS NULL GROUP BY instance_id"
)
