"""Routing filter: match the listener's route table and attach the Route to the request."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.keys import ROUTE_KEY, STATE_KEY


def routing_filter(*, listener: str) -> Middleware:
    """404/405 (as problem+json via the error filter) when nothing on ``listener`` matches."""

    @web.middleware
    async def routing(request: web.Request, handler: Handler) -> web.StreamResponse:
        table = request.app[STATE_KEY].tables[listener]
        request[ROUTE_KEY] = table.match(request.method, request.path)
        return await handler(request)

    return routing
