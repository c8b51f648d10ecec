"""Routing: match the listener's route table, then run that route's own filter chain.

The listener filters (request id, tracing, observability, errors) are aiohttp middlewares and
run for every request. After routing, only the route filters a route's policy asks for run
(auth, rate limit, partner scope, cache), composed once per route like Envoy's per-route filter
config, ending in the route's handler (the proxy, or one the gateway serves itself). Every
layer costs a coroutine per request, so a route without policies pays for none of them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from yarl import URL

from gateway.edge.header_limits import check_header_block
from gateway.edge.request_target import needs_normalising, normalise
from gateway.errors import UnsupportedContentEncoding
from gateway.partner_api.contract import Contract
from gateway.request_keys import OPERATION_KEY, ROUTE_KEY, STATE_KEY
from gateway.route_table import Route


def _encoded(request: web.Request) -> bool:
    coding = request.headers.get("Content-Encoding")
    return coding is not None and coding.strip().lower() not in ("", "identity")


@dataclasses.dataclass(frozen=True, slots=True)
class RouteFilter:
    """A filter that runs only on routes for which ``applies(route)`` is true."""

    applies: Callable[[Route], bool]
    middleware: Middleware


def route_dispatcher(*, listener: str, route_filters: list[RouteFilter],
                     handlers: Mapping[str | None, Handler], contract: Contract | None = None) -> Handler:
    """The listener app's only handler. ``handlers[None]`` serves routes with a ``cluster`` (the
    proxy); ``handlers[name]`` serves routes with ``handler: name``. 404/405 for no match are
    raised as GatewayErrors and answered as problem+json by the error filter.

    Before routing: the header block's size (431, ``gateway.edge.header_limits``) and one normal form
    of the request target (400, ``gateway.edge.request_target``; strict on the external listener) that
    routing, the route's filters and the cluster all use. With a ``contract`` (the partner API
    document, external listener), a path under its server URL is matched against the document
    first: a path it does not have is 404, a method it does not declare 405 with the document's
    ``Allow`` — before the route table and auth, as routing does — and the operation is handed to
    the route's contract filter in ``OPERATION_KEY``."""
    chains: dict[int, tuple[Route, Handler]] = {}
    strict = listener == "external"

    def compose(route: Route) -> Handler:
        handler = handlers[route.handler]
        for route_filter in reversed(route_filters):
            if route_filter.applies(route):
                handler = functools.partial(route_filter.middleware, handler=handler)
        if len(chains) > 1024:  # routes are frozen; a reload brings new ones
            chains.clear()
        chains[id(route)] = (route, handler)
        return handler

    async def dispatch(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        limits = state.config.listeners[listener]
        check_header_block(request.raw_headers, max_bytes=limits.max_header_block_bytes,
                           max_fields=limits.max_header_fields)
        outer = request
        if needs_normalising(raw := request.raw_path):
            target = normalise(raw, strict=strict)
            if target != raw:
                request = request.clone(rel_url=URL(target, encoded=True))
        if contract is not None and contract.covers(request.path):
            request[OPERATION_KEY] = contract.match(request.method, request.path)
        route = state.tables[listener].match(request.method, request.path)
        request[ROUTE_KEY] = route
        if request is not outer:  # the listener filters (access log, span) name the route too
            outer[ROUTE_KEY] = route
        if (route.handler is not None or route.partner_scope is not None) and _encoded(request):
            # bodies are forwarded as sent (never decompressed); those read here must be plain
            raise UnsupportedContentEncoding("send the body without Content-Encoding (identity)")
        entry = chains.get(id(route))
        handler = entry[1] if entry is not None and entry[0] is route else compose(route)
        return await handler(request)

    return dispatch
