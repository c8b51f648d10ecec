"""Partner scope filter: a partner only ever creates, lists and reads its *own* orders.

Runs on routes with ``partner_scope: orders`` (external, auth required), after auth and rate
limiting (it needs ``request[PARTNER_KEY]``) and before the cache (so cache keys see the scoped
query). Enforcement happens here, at the gateway, whatever the MES does:

* ``POST {prefix}`` — JSON object only (415/400/422, 413 over 16 KiB); rebuilt from the allowed
  members with ``partner_id`` = the caller; ``Location`` points at the partner API;
* ``GET {prefix}`` — ``partner_id=<caller>`` forced on the upstream query, unknown params 400;
* ``GET {prefix}/{id}`` — the (small, buffered) order is returned only if its ``partner_id`` is the
  caller's; otherwise the same 404 as an unknown id, so existence never leaks;
* any other sub-path: 404; answers are projected onto ``gateway.partner_orders.ORDER_FIELDS`` and
  upstream problems are re-issued as ours (no internal paths or ``type`` URIs leak).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from gateway.keys import PARTNER_KEY, ROUTE_KEY, UPSTREAM_BODY_KEY
from gateway.partner_orders import (
    MAX_CREATE_BYTES,
    PartnerInputError,
    classify,
    create_body,
    list_query,
    project_order,
    project_page,
)
from gateway.partner_responses import BadUpstream, json_answer, not_found, object_of, problem, refusal

log = logging.getLogger("gateway.partner_scope")
_CONDITIONAL = ("If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range")


async def _read_limited(request: web.Request, body_timeout: float) -> bytes:
    if request.content_length is not None and request.content_length > MAX_CREATE_BYTES:
        raise PartnerInputError(413, f"an order must be at most {MAX_CREATE_BYTES} bytes of JSON")
    chunks, size = [], 0
    async with asyncio.timeout(body_timeout):
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > MAX_CREATE_BYTES:
                raise PartnerInputError(413, f"an order must be at most {MAX_CREATE_BYTES} bytes of JSON")
            chunks.append(chunk)
    return b"".join(chunks)


def _body_of(response: web.StreamResponse) -> bytes | None:
    """The buffered body; None when the proxy streamed it (never for orders: they are tiny)."""
    if response.prepared or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        log.warning("partner order response was streamed; not inspected",
                    extra={"event.action": "partner-scope-unbuffered"})
        return None
    return response.body


async def _create(request: web.Request, handler: Handler, partner_id: str, prefix: str
                  ) -> web.StreamResponse:
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise PartnerInputError(415, f"send the order as application/json, not {ctype[:60]}")
    try:
        raw = await _read_limited(request, request[ROUTE_KEY].body_timeout)
    except TimeoutError:
        raise PartnerInputError(408, "request body not received in time") from None
    body = create_body(raw, partner_id)
    headers = CIMultiDict(request.headers)
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(body))
    forwarded = request.clone(headers=headers)
    forwarded[UPSTREAM_BODY_KEY] = body
    response = await handler(forwarded)
    data = _body_of(response)
    if data is None or response.status not in (200, 201):
        return response if data is None else refusal(request, response, data)
    order = object_of(data)
    if order.get("partner_id") != partner_id:  # cannot happen: partner_id is ours, no external_ref
        log.error("MES answered an order of another partner to a create",
                  extra={"event.action": "partner-scope-violation"})
        return problem(request, 502, "The order service answered inconsistently.")
    return json_answer(response, project_order(order), location=f"{prefix}/{order['id']}")


async def _list(request: web.Request, handler: Handler, partner_id: str) -> web.StreamResponse:
    query = list_query(request.query, partner_id)
    response = await handler(request.clone(rel_url=request.rel_url.with_query(query)))
    data = _body_of(response)
    if data is None or response.status == 304:
        return response
    if response.status != 200:
        return refusal(request, response, data)
    try:
        page = project_page(object_of(data))
    except ValueError as exc:
        raise BadUpstream(str(exc)) from None
    return json_answer(response, page)


async def _get(request: web.Request, handler: Handler, partner_id: str, prefix: str, order_id: int
               ) -> web.StreamResponse:
    headers = CIMultiDict(request.headers)
    for name in _CONDITIONAL:  # a 304 could not be checked for ownership
        headers.popall(name, None)
    response = await handler(request.clone(rel_url=f"{prefix}/{order_id}", headers=headers))
    data = _body_of(response)
    if data is None:
        return response
    if response.status == 404:
        return not_found(request, order_id)
    if response.status != 200:
        return refusal(request, response, data)
    order = object_of(data)
    if order.get("partner_id") != partner_id:
        return not_found(request, order_id)
    return json_answer(response, project_order(order))


def partner_scope_filter() -> Middleware:
    """Build the filter (stateless: the scope is a route option checked when the config loads)."""

    @web.middleware
    async def partner_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request[ROUTE_KEY]
        if route.partner_scope is None:
            return await handler(request)
        partner_id = request[PARTNER_KEY].id
        op = classify(request.method, request.path[len(route.prefix):])
        if op is None:
            return not_found(request, None)
        if op.kind == "get" and request.method != "GET":
            return problem(request, 405, f"{request.method} is not allowed on an order",
                            headers={"Allow": "GET"})
        try:
            if op.kind == "create":
                return await _create(request, handler, partner_id, route.prefix)
            if op.kind == "list":
                return await _list(request, handler, partner_id)
            assert op.order_id is not None
            return await _get(request, handler, partner_id, route.prefix, op.order_id)
        except PartnerInputError as exc:
            params = [{"name": exc.param, "reason": exc.detail}] if exc.param else None
            return problem(request, exc.status, exc.detail, params=params)
        except BadUpstream as exc:
            log.warning("MES answered an unreadable order: %s", exc,
                        extra={"event.action": "partner-scope-bad-upstream"})
            return problem(request, 502, "The order service answered an unreadable order.")

    return partner_scope
