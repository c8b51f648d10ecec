"""The legacy MES order store: SQL against the single ``orders`` table plus its audit trail.

Every write commits the order row and its ``order_status_history`` row in one
transaction; status changes lock the row (``SELECT … FOR UPDATE``) so concurrent
changes of one order serialise.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import asyncpg

from contracts.lifecycle import OrderStatus, check_transition
from contracts.order_input import NewOrder
from legacy_sim import metrics
from legacy_sim.events import log_event, since_ns

logger = logging.getLogger("legacy_sim.mes.orders")

# ``SELECT *`` as the legacy does; every query below returns whole order rows. The list filters
# (status, partner_id) are optional: ``$n IS NULL OR column = $n`` (no index either way: legacy).
_LIST = ("SELECT * FROM orders WHERE ($1::text IS NULL OR status = $1) "
         "AND ($2::text IS NULL OR partner_id = $2) ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4")
_COUNT = ("SELECT count(*) FROM orders WHERE ($1::text IS NULL OR status = $1) "
          "AND ($2::text IS NULL OR partner_id = $2)")


class OrderNotFound(LookupError):
    """No order with that id (the HTTP layer answers 404)."""


def order_json(row: asyncpg.Record) -> dict[str, Any]:
    """An order row as the legacy API returns it (timestamps ISO 8601, price in EUR)."""
    data = dict(row)
    price = data.pop("price")
    data["price_eur"] = float(price) if price is not None else None
    for key in ("created_at", "updated_at", "status_changed_at"):
        data[key] = data[key].isoformat()
    return data


async def create_order(pool: asyncpg.Pool, new: NewOrder, *, source: str) -> tuple[asyncpg.Record, bool]:
    """Insert an order (idempotent on ``(source, external_ref)``); returns ``(row, created)``."""
    started = time.perf_counter_ns()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO orders (source, external_ref, partner_id, customer, material, quantity, "
            "model_name, model_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (source, external_ref) DO NOTHING RETURNING *",
            source, new.external_ref, new.partner_id, new.customer, new.material, new.quantity,
            new.model_name, new.model_sha256)
        created = row is not None
        if row is not None:
            await conn.execute("INSERT INTO order_status_history (order_id, old_status, new_status, "
                               "changed_at) VALUES ($1, NULL, $2, $3)", row["id"], row["status"],
                               row["created_at"])
        else:  # the conflicting row exists: orders are never deleted
            row = await conn.fetchrow("SELECT * FROM orders WHERE source = $1 AND external_ref = $2",
                                      source, new.external_ref)
    if row is None:
        raise OrderNotFound(f"order {source}/{new.external_ref} vanished")
    if created:
        metrics.ORDERS_CREATED.labels(source=source).inc()
    log_event(logger, f"order {row['id']} {'created' if created else 'already exists'}",
              action="order-created" if created else "order-create-duplicate", duration_ns=since_ns(started),
              fields={"order.id": row["id"], "order.source": source, "order.external_ref": new.external_ref,
                      "order.status.new": row["status"]})
    return row, created


async def get_order(pool: asyncpg.Pool, order_id: int) -> asyncpg.Record:
    """The order with ``order_id``; raises :class:`OrderNotFound`."""
    row = await pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
    if row is None:
        raise OrderNotFound(f"order {order_id} not found")
    return row


async def list_orders(pool: asyncpg.Pool, *, status: OrderStatus | None, limit: int,
                      offset: int, partner_id: str | None = None) -> tuple[list[asyncpg.Record], int]:
    """One page of orders, newest first, and the total count (the legacy counts every time)."""
    wanted = status.value if status is not None else None
    async with pool.acquire() as conn:
        rows = await conn.fetch(_LIST, wanted, partner_id, limit, offset)
        total = await conn.fetchval(_COUNT, wanted, partner_id)
    return list(rows), int(total)


async def change_status(pool: asyncpg.Pool, order_id: int, target: OrderStatus, *,
                        price: Decimal | None = None, model_sha256: str | None = None) -> asyncpg.Record:
    """Move an order to ``target`` under a row lock, with its history row, in one transaction.

    Raises :class:`OrderNotFound` or :class:`~contracts.lifecycle.IllegalTransition`.
    ``price``/``model_sha256`` are stored too when given (the pricing step).
    """
    started = time.perf_counter_ns()
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval("SELECT status FROM orders WHERE id = $1 FOR UPDATE", order_id)
        if current is None:
            raise OrderNotFound(f"order {order_id} not found")
        old = OrderStatus(current)
        check_transition(old, target)
        row = await conn.fetchrow(
            "UPDATE orders SET status = $2, price = coalesce($3, price), "
            "model_sha256 = coalesce($4, model_sha256), updated_at = now(), status_changed_at = now() "
            "WHERE id = $1 RETURNING *", order_id, target.value, price, model_sha256)
        await conn.execute("INSERT INTO order_status_history (order_id, old_status, new_status, changed_at) "
                           "VALUES ($1, $2, $3, $4)", order_id, old.value, target.value,
                           row["status_changed_at"])
    metrics.count_status_change(old, target)
    log_event(logger, f"order {order_id} {old} -> {target}", action="order-status-changed",
              duration_ns=since_ns(started),
              fields={"order.id": order_id, "order.status.old": old.value, "order.status.new": target.value})
    return row
