"""Partner scope filter: a partner only ever creates, lists and reads its *own* orders.

Runs on routes with ``partner_scope: orders`` (external, auth required), after auth and rate
limiting (it needs ``request[PARTNER_KEY]``) and before the cache (so cache keys see the scoped
query). Enforcement happens here, at the gateway, whatever the MES does:

* ``POST {prefix}`` — JSON object only (415/400/422, 413 over 16 KiB); rebuilt from the allowed
  members with ``partner_id`` = the caller; ``Location`` points at the partner API;
* ``GET {prefix}`` — ``partner_id=<caller>`` forced on the upstream query, unknown params 400;
  every item of the answer is checked: one of another partner refuses the page (502);
* ``GET {prefix}/{id}`` — the order is returned only if its ``partner_id`` is the caller's;
  otherwise the same 404 as an unknown id, so existence never leaks;
* any other sub-path: 404; answers are projected onto ``gateway.partner_api.orders.ORDER_FIELDS`` and
  upstream problems are re-issued as ours (no internal paths or ``type`` URIs leak).

Fail closed: every answer is read whole by the proxy (``RESPONSE_CAP_KEY``, whatever its
framing: chunked, large, slow) up to ``MAX_ANSWER_BYTES``, then checked and projected; an answer
that cannot be read, parsed or checked is a 502 problem, counted in
``gateway_partner_scope_refusals_total{reason}`` — never relayed as the MES sent it.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from gateway import metrics
from gateway.edge.request_body import read_json_body
from gateway.errors import UpstreamResponseTooLarge
from gateway.partner_api.orders import (
    MAX_ANSWER_BYTES,
    MAX_CREATE_BYTES,
    ForeignOrder,
    PartnerInputError,
    classify,
    create_body,
    list_query,
    project_order,
    project_page,
)
from gateway.partner_api.responses import BadUpstream, json_answer, not_found, object_of, problem, refusal
from gateway.request_keys import PARTNER_KEY, REQUEST_BODY_KEY, RESPONSE_CAP_KEY, ROUTE_KEY, UPSTREAM_BODY_KEY

log = logging.getLogger("gateway.partner_scope")
_CONDITIONAL = ("If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range")


#: Why an answer was refused (the metric's label values, all present at 0 from start-up).
REFUSAL_REASONS = ("foreign_item", "foreign_create", "too_large", "unreadable", "unbuffered")


class ScopeRefused(Exception):
    """The answer cannot be given to the partner: ``reason`` is a REFUSAL_REASONS value."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


async def _upstream(handler: Handler, request: web.Request) -> web.StreamResponse:
    """The answer of the rest of the chain, read whole (see ``RESPONSE_CAP_KEY``)."""
    if request.method == "HEAD":  # the answer must be checked: ask for it whole (aiohttp sends no body)
        request = request.clone(method="GET")
    request[RESPONSE_CAP_KEY] = MAX_ANSWER_BYTES
    try:
        return await handler(request)
    except UpstreamResponseTooLarge as exc:
        raise ScopeRefused("too_large", str(exc)) from None


def _body_of(response: web.StreamResponse) -> bytes:
    """The buffered body; a streamed answer (a filter chain that did not honour the cap) is refused."""
    if response.prepared or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        raise ScopeRefused("unbuffered", "the answer was streamed and could not be checked")
    return response.body


async def _create(request: web.Request, handler: Handler, partner_id: str, prefix: str
                  ) -> web.StreamResponse:
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise PartnerInputError(415, f"send the order as application/json, not {ctype[:60]}")
    raw = request.get(REQUEST_BODY_KEY)  # read and checked by the contract filter
    if raw is None:  # a scoped route outside the partner API document
        raw = await read_json_body(request, MAX_CREATE_BYTES, request[ROUTE_KEY].body_timeout)
    body = create_body(raw, partner_id)
    headers = CIMultiDict(request.headers)
    headers.popall("Connection", None)  # a client-named hop-by-hop token must not drop ours below
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(body))
    # exactly ``POST {prefix}`` upstream: the client's query never reaches the MES
    forwarded = request.clone(rel_url=prefix, headers=headers)
    forwarded[UPSTREAM_BODY_KEY] = body
    response = await _upstream(handler, forwarded)
    data = _body_of(response)
    if response.status not in (200, 201):
        return refusal(request, response, data)
    order = object_of(data)
    if order.get("partner_id") != partner_id:  # cannot happen: partner_id is ours, no external_ref
        raise ScopeRefused("foreign_create", "the MES answered a create with another partner's order")
    return json_answer(response, project_order(order), location=f"{prefix}/{order['id']}")


async def _list(request: web.Request, handler: Handler, partner_id: str, prefix: str) -> web.StreamResponse:
    query = list_query(request.query, partner_id)
    response = await _upstream(handler, request.clone(rel_url=request.rel_url.with_path(prefix)
                                                      .with_query(query)))
    data = _body_of(response)
    if response.status == 304:
        return response
    if response.status != 200:
        return refusal(request, response, data)
    try:
        page = project_page(object_of(data), partner_id)
    except ForeignOrder as exc:
        raise ScopeRefused("foreign_item", str(exc)) from None
    except ValueError as exc:
        raise BadUpstream(str(exc)) from None
    return json_answer(response, page)


async def _get(request: web.Request, handler: Handler, partner_id: str, prefix: str, order_id: int
               ) -> web.StreamResponse:
    headers = CIMultiDict(request.headers)
    for name in _CONDITIONAL:  # a 304 could not be checked for ownership
        headers.popall(name, None)
    response = await _upstream(handler, request.clone(rel_url=f"{prefix}/{order_id}", headers=headers))
    data = _body_of(response)
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
    refusals = {reason: metrics.PARTNER_SCOPE_REFUSALS.labels(reason=reason) for reason in REFUSAL_REASONS}

    @web.middleware
    async def partner_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request[ROUTE_KEY]
        if route.partner_scope is None:
            return await handler(request)
        partner_id = request[PARTNER_KEY].id
        op = classify(request.method, request.path[len(route.prefix):])
        if op is None:
            return not_found(request, None)
        if op.kind == "get" and request.method not in ("GET", "HEAD"):
            return problem(request, 405, f"{request.method} is not allowed on an order",
                            headers={"Allow": "GET, HEAD"})
        if op.kind != "create" and request.body_exists:
            # never forwarded: to a legacy that ignores GET bodies it would be a smuggled request
            return problem(request, 400, "a read carries no request body")
        try:
            if op.kind == "create":
                return await _create(request, handler, partner_id, route.prefix)
            if op.kind == "list":
                return await _list(request, handler, partner_id, route.prefix)
            assert op.order_id is not None
            return await _get(request, handler, partner_id, route.prefix, op.order_id)
        except PartnerInputError as exc:
            params = [{"name": exc.param, "reason": exc.detail}] if exc.param else None
            return problem(request, exc.status, exc.detail, params=params)
        except BadUpstream as exc:
            refusals["unreadable"].inc()
            log.warning("MES answered an unreadable order: %s", exc,
                        extra={"event.action": "partner-scope-bad-upstream"})
            return problem(request, 502, "The order service answered an unreadable order.")
        except ScopeRefused as exc:
            refusals[exc.reason].inc()
            foreign = exc.reason.startswith("foreign")
            log.log(logging.ERROR if foreign else logging.WARNING,
                    "partner-scoped answer refused (%s): %s", exc.reason, exc, extra={
                        "event.action": "partner-scope-violation" if foreign else "partner-scope-refused",
                        "event.reason": exc.reason, "gateway.partner": partner_id})
            return problem(request, 502, "The order service answered something that cannot be "
                                         "given to this partner.")

    return partner_scope
