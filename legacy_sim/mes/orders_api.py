"""MES order endpoints: create, list, get, change status."""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from contracts.lifecycle import IllegalTransition, OrderStatus, parse_status
from contracts.order_input import InvalidOrder, parse_new_order
from legacy_sim.events import log_event
from legacy_sim.http_context import bind_order_id
from legacy_sim.mes import orders_repo
from legacy_sim.mes.params import list_query, order_id_of
from legacy_sim.mes.state import state_of
from legacy_sim.problem import Problem, invalid_field
from legacy_sim.request_body import read_json_object

logger = logging.getLogger("legacy_sim.mes.orders")

routes = web.RouteTableDef()


@routes.post("/orders")
async def create_order(request: web.Request) -> web.Response:
    """Create an order: 201 + Location, or 200 with the existing order for a known external_ref.

    ``source`` is optional: ``b2b`` (default) or ``crm`` — the latter for a relay delivering CRM
    orders over HTTP, with the CRM order id as the (then required) ``external_ref``.
    """
    state = state_of(request)
    body = await read_json_object(request, state.config.max_json_bytes)
    try:
        new = parse_new_order(body)
    except InvalidOrder as exc:
        raise invalid_field(exc.field, exc.reason) from None
    source = body.get("source", "b2b")
    if source not in ("b2b", "crm"):
        raise invalid_field("source", "must be 'b2b' or 'crm'")
    if source == "crm" and new.external_ref is None:
        raise invalid_field("external_ref", "is required with source 'crm' (the CRM order id)")
    row, created = await orders_repo.create_order(state.pool, new, source=source)
    bind_order_id(row["id"])
    return web.json_response(orders_repo.order_json(row), status=201 if created else 200,
                             headers={"Location": f"/orders/{row['id']}"})


@routes.get("/orders")
async def list_orders(request: web.Request) -> web.Response:
    """The operators' list: newest first, optional status/partner_id filters, with the total count."""
    query = list_query(request)
    rows, total = await orders_repo.list_orders(state_of(request).pool, status=query.status,
                                                limit=query.limit, offset=query.offset,
                                                partner_id=query.partner_id)
    return web.json_response({"items": [orders_repo.order_json(r) for r in rows], "page": query.page,
                              "per_page": query.limit, "offset": query.offset, "total": total})


@routes.get("/orders/{order_id}")
async def get_order(request: web.Request) -> web.Response:
    """One order by id (404 if unknown)."""
    order_id = order_id_of(request)
    try:
        row = await orders_repo.get_order(state_of(request).pool, order_id)
    except orders_repo.OrderNotFound as exc:
        raise Problem(404, str(exc)) from None
    return web.json_response(orders_repo.order_json(row))


def _price_of(body: dict[str, Any], target: OrderStatus) -> Decimal | None:
    value = body.get("price_eur")
    if value is None:
        return None
    if target is not OrderStatus.PRICE_CALCULATED:
        raise invalid_field("price_eur", "may be given only with status PRICE_CALCULATED")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10**10:
        raise invalid_field("price_eur", "must be a number between 0 and 1e10")
    return Decimal(repr(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


@routes.post("/orders/{order_id}/status")
async def change_status(request: web.Request) -> web.Response:
    """Move an order along the lifecycle: 200 with the order, 409 on an illegal transition."""
    state = state_of(request)
    order_id = order_id_of(request)
    body = await read_json_object(request, state.config.max_json_bytes)
    if "status" not in body:
        raise invalid_field("status", "is required")
    try:
        target = parse_status(body["status"])
    except ValueError as exc:
        raise invalid_field("status", str(exc)) from None
    price = _price_of(body, target)
    try:
        row = await orders_repo.change_status(state.pool, order_id, target, price=price)
    except orders_repo.OrderNotFound as exc:
        raise Problem(404, str(exc)) from None
    except IllegalTransition as exc:
        raise conflict(order_id, exc) from None
    return web.json_response(orders_repo.order_json(row))


def conflict(order_id: int, exc: IllegalTransition) -> Problem:
    """Log a refused transition and build its 409."""
    log_event(logger, f"order {order_id}: {exc}", action="order-status-changed", outcome="failure",
              level=logging.WARNING, fields={"order.id": order_id, "order.status.old": exc.current.value,
                                             "order.status.new": exc.target.value})
    return Problem(409, str(exc), current_status=exc.current.value, requested_status=exc.target.value)
