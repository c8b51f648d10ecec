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

from gateway.keys import ROUTE_KEY, STATE_KEY
from gateway.routing import Route


@dataclasses.dataclass(frozen=True, slots=True)
class RouteFilter:
    """A filter that runs only on routes for which ``applies(route)`` is true."""

    applies: Callable[[Route], bool]
    middleware: Middleware


def route_dispatcher(*, listener: str, route_filters: list[RouteFilter],
                     handlers: Mapping[str | None, Handler]) -> Handler:
    """The listener app's only handler. ``handlers[None]`` serves routes with a ``cluster`` (the
    proxy); ``handlers[name]`` serves routes with ``handler: name``. 404/405 for no match are
    raised as GatewayErrors and answered as problem+json by the error filter."""
    chains: dict[int, tuple[Route, Handler]] = {}

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
        route = request.app[STATE_KEY].tables[listener].match(request.method, request.path)
        request[ROUTE_KEY] = route
        entry = chains.get(id(route))
        handler = entry[1] if entry is not None and entry[0] is route else compose(route)
        return await handler(request)

    return dispatch
