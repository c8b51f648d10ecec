"""Builds the listener applications. The filter chain is this one explicit list."""

from __future__ import annotations

from aiohttp import web

from gateway.access_log import AccessLog
from gateway.filters import error_filter, observability_filter, request_id_filter, routing_filter
from gateway.keys import LISTENER_KEY, ROUTE_KEY, STATE_KEY
from gateway.proxy import proxy_handler
from gateway.state import GatewayState
from telemetry.aiohttp_tracing import server_span_filter


def _route_template(request: web.Request) -> str | None:
    route = request.get(ROUTE_KEY)
    return route.name if route is not None else None


def build_listener_app(state: GatewayState, listener: str, *, access_log: AccessLog) -> web.Application:
    """One aiohttp app per listener; routes are matched by our own table, not aiohttp's router."""
    cfg = state.config.listeners[listener]
    tracing = state.tracer_provider is not None
    chain = [
        request_id_filter(trust_inbound=cfg.trust_forwarded),   # 1. id first: everything logs it
        *([server_span_filter(route_name=_route_template,       # 2. SERVER span (only when tracing is
                              trust_traceparent=cfg.trust_forwarded,  # on); an outsider's traceparent
                              tracer_provider=state.tracer_provider)]  # only becomes a link
          if tracing else []),
        observability_filter(listener=listener, access_log=access_log,  # 3. sees the final status
                             tracing=tracing),
        error_filter(),                                         # 4. exceptions → problem+json
        routing_filter(listener=listener),                      # 5. route table → ROUTE_KEY
        # later: auth → rate limit → load shedding → cache (each its own module)
    ]
    app = web.Application(middlewares=chain, client_max_size=cfg.max_body_bytes)
    app[STATE_KEY] = state
    app[LISTENER_KEY] = listener
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app
