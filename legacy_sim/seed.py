"""Seed the legacy MES database with a realistic history: ~3 years of orders, a few thousand active.

Everything is generated server-side (``INSERT … SELECT … FROM generate_series``),
so a million orders take seconds to minutes, not hours. Counts per status are
exact (largest-remainder split), timestamps and attributes are pseudo-random
from ``--seed`` (PostgreSQL ``setseed``).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from contracts.lifecycle import ACTIVE_STATUSES, FORWARD_PATH, OrderStatus
from legacy_sim.events import log_event
from legacy_sim.mes.schema import apply_schema

logger = logging.getLogger("legacy_sim.seed")

CANCELLED_SHARE = 0.12
#: How long an active order of a healthy made-to-order workshop sits in each status, at most: every
#: bound is well under that status's OrdersStuck threshold (prometheus/rules/orders.yml), so a freshly
#: seeded, idle platform raises no alert (tests/stack/test_alerts_seeded_idle.py).
MAX_DWELL: dict[OrderStatus, timedelta] = {
    OrderStatus.SUBMITTED: timedelta(minutes=15),  # being priced: 2-3 min, complex models up to 30
    OrderStatus.PRICE_CALCULATED: timedelta(days=1),  # quote with the customer / sales
    OrderStatus.MANUFACTURING_APPROVED: timedelta(hours=12),  # waiting for a slot on the shop floor
    OrderStatus.MANUFACTURING_STARTED: timedelta(days=4),  # printing, post-processing
    OrderStatus.MANUFACTURING_COMPLETED: timedelta(hours=12),  # packing, waiting for the carrier
    OrderStatus.SHIPPED: timedelta(days=5),  # in transit until the customer confirms
}
#: Little's law with a steady intake and dwell times spread evenly up to MAX_DWELL: the orders in a
#: status are proportional to its (mean) dwell time.
ACTIVE_WEIGHTS: dict[OrderStatus, float] = {s: d.total_seconds() for s, d in MAX_DWELL.items()}
assert set(ACTIVE_WEIGHTS) == set(ACTIVE_STATUSES)

# $1 statuses text[], $2 n before the first row, $3 row count, $4 cancelled count | bucket lower bounds
_ROWS = """
INSERT INTO orders (source, external_ref, partner_id, customer, material, quantity, model_name,
                    model_sha256, price, status, created_at, updated_at, status_changed_at)
SELECT src, CASE WHEN src = 'crm' THEN 'CRM-S' || lpad(n::text, 9, '0')
                 WHEN random() < 0.4 THEN 'PO-' || n END,
       CASE WHEN src = 'b2b' THEN 'partner-' || (1 + floor(random() * 40))::int END,
       (ARRAY['Acme GmbH','Globex AG','Initech SE','Umbrella KG','Stark Industries','Wayne Enterprises',
              'Tyrell Corp','Cyberdyne Systems','Soylent AG','Hooli GmbH'])[1 + floor(random() * 10)::int],
       (ARRAY['PLA','PLA','PLA','PETG','PETG','ABS','NYLON','RESIN','RESIN','TITANIUM'])
           [1 + floor(random() * 10)::int],
       1 + floor(random() ^ 3 * 500)::int,
       'part-' || substr(md5(n::text), 1, 10) || '.stl',
       CASE WHEN status <> 'SUBMITTED' THEN md5(n::text || 'a') || md5(n::text || 'b') END,
       CASE WHEN status = 'SUBMITTED' OR (status = 'CANCELLED' AND random() < 0.5) THEN NULL
            ELSE round((15 + random() ^ 2 * 2000)::numeric, 2) END,
       status, created, changed, changed
FROM (SELECT n, status, created, CASE WHEN random() < 0.6 THEN 'crm' ELSE 'b2b' END AS src,
             {changed} AS changed
      FROM (SELECT n, status, {created} AS created
            FROM (SELECT $2::bigint + g AS n, g, {status} AS status
                  FROM generate_series(1, $3::bigint) AS g) AS numbered) AS dated) AS final
ORDER BY created
"""
# archived: cancelled orders spread evenly over time (exact count), ~3 years back, closed within weeks
_ARCHIVED = _ROWS.format(
    status="CASE WHEN floor(g * $4::float8 / $3) > floor((g - 1) * $4::float8 / $3) "
           "THEN ($1::text[])[2] ELSE ($1::text[])[1] END",
    created="now() - interval '3 years' + (interval '3 years' - interval '10 days') * (g::float8 / $3)",
    changed="least(now(), created + interval '30 days' * (0.1 + random()))")
# active: time in the status spread evenly up to $5 (MAX_DWELL, s); the earlier steps took 30-100 % of
# their own maxima ($6, s) before that. greatest() keeps status_changed_at >= created_at.
_ACTIVE = _ROWS.format(
    status="($1::text[])[width_bucket(g, $4::bigint[])]",
    created="now() - interval '1 second' * (($6::float8[])[array_position($1::text[], status)] "
            "* (0.3 + 0.7 * random()) + ($5::float8[])[array_position($1::text[], status)] * random())",
    changed="greatest(created, now() - interval '1 second' "
            "* ($5::float8[])[array_position($1::text[], status)] * random())")

_HISTORY = """
INSERT INTO order_status_history (order_id, old_status, new_status, changed_at)
SELECT o.id, CASE WHEN s.i > 1 THEN path[s.i - 1] END, path[s.i],
       o.created_at + (o.status_changed_at - o.created_at) * ((s.i - 1)::float8 / greatest(pos - 1, 1))
FROM orders o
CROSS JOIN LATERAL (SELECT $2::text[] AS path) AS p
CROSS JOIN LATERAL array_position(p.path, o.status) AS pos
CROSS JOIN LATERAL generate_series(1, pos) AS s(i)
WHERE o.id > $1 AND o.status = ANY($3::text[])
"""


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What was inserted and how long each phase took."""

    counts: dict[str, int]
    history_rows: int
    seconds_orders: float
    seconds_history: float
    seconds_analyze: float


def split_counts(total: int, weights: dict[OrderStatus, float]) -> dict[OrderStatus, int]:
    """Split ``total`` by ``weights`` into integers that add up exactly (largest remainder)."""
    norm = sum(weights.values())
    raw = {status: total * w / norm for status, w in weights.items()}
    counts = {status: int(value) for status, value in raw.items()}
    by_remainder = sorted(raw, key=lambda s: raw[s] - counts[s], reverse=True)
    for status in by_remainder[: total - sum(counts.values())]:
        counts[status] += 1
    return counts


def planned_counts(orders: int, active: int) -> dict[OrderStatus, int]:
    """Exact number of orders per status for ``orders`` in total of which ``active`` are active."""
    if not 0 <= active <= orders:
        raise ValueError("--active must be between 0 and --orders")
    archived = orders - active
    cancelled = round(archived * CANCELLED_SHARE)
    return {OrderStatus.CLOSED: archived - cancelled, OrderStatus.CANCELLED: cancelled,
            **split_counts(active, ACTIVE_WEIGHTS)}


async def seed(dsn: str, *, orders: int, active: int, seed_value: int = 42,
               append: bool = False) -> SeedReport:
    """Fill the orders table; refuses a non-empty table unless ``append``."""
    plan = planned_counts(orders, active)
    conn = await asyncpg.connect(dsn, command_timeout=None)
    try:
        await apply_schema(conn)
        if not append and await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orders)"):
            raise RuntimeError("orders table is not empty; use --append to add to it")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT setseed($1)", (seed_value % 2_000_001) / 1_000_000 - 1)
            first = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM orders"))
            archived = [OrderStatus.CLOSED.value, OrderStatus.CANCELLED.value]
            await conn.execute(_ARCHIVED, archived, first, orders - active, plan[OrderStatus.CANCELLED])
            if active:
                statuses = [s.value for s in ACTIVE_STATUSES]
                lowers = list(itertools.accumulate((plan[s] for s in ACTIVE_STATUSES[:-1]), initial=1))
                dwell = [MAX_DWELL[s].total_seconds() for s in ACTIVE_STATUSES]
                before = list(itertools.accumulate(dwell[:-1], initial=0.0))
                await conn.execute(_ACTIVE, statuses, first + orders - active, active, lowers, dwell, before)
            t_orders = time.perf_counter() - started
            status_path = [s.value for s in FORWARD_PATH]
            history = await conn.execute(_HISTORY, first, status_path, [s.value for s in ACTIVE_STATUSES])
        t_history = time.perf_counter() - started - t_orders
        await conn.execute("ANALYZE orders; ANALYZE order_status_history")
        t_analyze = time.perf_counter() - started - t_orders - t_history
    finally:
        await conn.close()
    report = SeedReport(counts={s.value: c for s, c in plan.items()}, history_rows=int(history.split()[-1]),
                        seconds_orders=t_orders, seconds_history=t_history, seconds_analyze=t_analyze)
    log_event(logger, f"seeded {orders} orders ({active} active) in {t_orders + t_history + t_analyze:.1f} s",
              action="seed", duration_ns=int((t_orders + t_history + t_analyze) * 1e9),
              fields={"seed.orders": orders, "seed.active": active})
    return report
