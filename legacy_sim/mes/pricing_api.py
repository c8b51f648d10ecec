"""MES pricing endpoints: price a model, or price an order's model and store the price."""

from __future__ import annotations

from aiohttp import web

from contracts.lifecycle import IllegalTransition, OrderStatus
from legacy_sim.mes import orders_repo
from legacy_sim.mes.orders_api import conflict
from legacy_sim.mes.params import order_id_of
from legacy_sim.mes.pricing_service import PriceResult
from legacy_sim.mes.state import state_of
from legacy_sim.pricing import InvalidModel, Material
from legacy_sim.pricing.materials import material_named
from legacy_sim.problem import Problem, invalid_field
from legacy_sim.request_body import read_body

routes = web.RouteTableDef()

STL_CONTENT_TYPES = frozenset({"model/stl", "application/octet-stream", "application/sla",
                               "model/x.stl-binary", "model/x.stl-ascii", "application/vnd.ms-pki.stl"})


def _material(request: web.Request, default: str | None = None) -> Material:
    raw = request.query.get("material", default)
    if raw is None:
        raise invalid_field("material", "is required (query parameter)")
    try:
        return material_named(raw)
    except ValueError as exc:
        raise invalid_field("material", str(exc)) from None


async def _price(request: web.Request, material: Material, order_id: int | None = None) -> PriceResult:
    if request.content_type not in STL_CONTENT_TYPES:
        raise Problem(415, f"content type {request.content_type!r} is not an STL model; "
                           f"use model/stl or application/octet-stream")
    state = state_of(request)
    model = await read_body(request, state.config.max_model_bytes)
    try:
        return await state.pricing.calculate(model, material, order_id=order_id)
    except InvalidModel as exc:
        raise invalid_field("body", str(exc)) from None


@routes.post("/price")
async def price_model(request: web.Request) -> web.Response:
    """Synchronous legacy price calculation of the STL body (slow on purpose)."""
    result = await _price(request, _material(request))
    return web.json_response(result.as_json())


@routes.post("/orders/{order_id}/price")
async def price_order(request: web.Request) -> web.Response:
    """Price the order's model, store price and hash, move SUBMITTED → PRICE_CALCULATED."""
    state = state_of(request)
    order_id = order_id_of(request)
    try:
        order = await orders_repo.get_order(state.pool, order_id)
    except orders_repo.OrderNotFound as exc:
        raise Problem(404, str(exc)) from None
    current = OrderStatus(order["status"])
    if current is not OrderStatus.SUBMITTED:  # refuse before the slow part
        raise conflict(order_id, IllegalTransition(current, OrderStatus.PRICE_CALCULATED))
    result = await _price(request, _material(request, order["material"]), order_id)
    try:
        row = await orders_repo.change_status(state.pool, order_id, OrderStatus.PRICE_CALCULATED,
                                              price=result.quote.price_eur, model_sha256=result.model_sha256)
    except IllegalTransition as exc:  # changed while we were calculating
        raise conflict(order_id, exc) from None
    return web.json_response({**orders_repo.order_json(row), "pricing": result.as_json()})
