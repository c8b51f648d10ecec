"""Per-request log context of the stand-ins: the caller's request id and the order being handled.

Outermost middleware of the MES and CRM apps. It binds ``telemetry.request_id_var`` to a
well-formed inbound ``X-Request-ID`` (:func:`telemetry.request_id.is_well_formed`: the gateway and
sidecar forward theirs, so the stand-in's log lines join the gateway's access log on
``http.request.id``) and ``telemetry.order_id_var`` to the ``{order_id}`` path segment, so every
line logged while handling the request carries them.
Handlers that learn the id later (``POST /orders``) call :func:`bind_order_id`.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from telemetry import order_id_var, request_id_var
from telemetry.request_id import HEADER, is_well_formed

_ORDER_ID = re.compile(r"^[0-9]{1,19}$")


def bind_order_id(order_id: int | str) -> None:
    """Make ``order_id`` the ``order.id`` of every further log line of this request or message.

    The request middleware (or the consumer's per-message task) restores the previous value.
    """
    order_id_var.set(str(order_id))


def request_context_middleware(*, order_id_param: str | None = None) -> Middleware:
    """Bind request id and order id (from the path parameter ``order_id_param``) for one request."""

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        inbound = request.headers.get(HEADER, "")
        request_token = request_id_var.set(inbound if is_well_formed(inbound) else None)
        raw_order_id = request.match_info.get(order_id_param, "") if order_id_param else ""
        order_token = order_id_var.set(raw_order_id if _ORDER_ID.match(raw_order_id) else None)
        try:
            return await handler(request)
        finally:
            order_id_var.reset(order_token)
            request_id_var.reset(request_token)

    return request_context
