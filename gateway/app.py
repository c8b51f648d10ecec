"""Builds the listener applications. The filter chain is this one explicit list."""

from __future__ import annotations

from aiohttp import web

from gateway.access_log import AccessLog
from gateway.filters import error_filter, observability_filter, request_id_filter, routing_filter
from gateway.keys import LISTENER_KEY, STATE_KEY
from gateway.proxy import proxy_handler
from gateway.state import GatewayState


def build_listener_app(state: GatewayState, listener: str, *, access_log: AccessLog) -> web.Application:
    """One aiohttp app per listener; routes are matched by our own table, not aiohttp's router."""
    cfg = state.config.listeners[listener]
    chain = [
        request_id_filter(trust_inbound=cfg.trust_forwarded),   # 1. id first: everything logs it
        observability_filter(listener=listener, access_log=access_log),  # 2. sees the final status
        error_filter(),                                         # 3. exceptions → problem+json
        routing_filter(listener=listener),                      # 4. route table → ROUTE_KEY
        # later: auth → rate limit → load shedding → cache (each its own module)
    ]
    app = web.Application(middlewares=chain, client_max_size=cfg.max_body_bytes)
    app[STATE_KEY] = state
    app[LISTENER_KEY] = listener
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app
