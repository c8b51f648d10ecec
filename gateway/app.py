"""Builds the listener applications. The filter chain is this one explicit list."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway.access_log import AccessLog
from gateway.api_keys import ApiKeyStore
from gateway.cache import ResponseCache
from gateway.filters import error_filter, observability_filter, request_id_filter, routing_filter
from gateway.filters.auth import auth_filter
from gateway.filters.cache import cache_filter
from gateway.filters.ratelimit import ratelimit_filter
from gateway.keys import LISTENER_KEY, ROUTE_KEY, STATE_KEY
from gateway.proxy import proxy_handler
from gateway.ratelimit import PartnerLimiter
from gateway.state import GatewayState
from telemetry.aiohttp_tracing import server_span_filter


def _route_template(request: web.Request) -> str | None:
    route = request.get(ROUTE_KEY)
    return route.name if route is not None else None


def build_listener_app(state: GatewayState, listener: str, *, access_log: AccessLog,
                       api_keys: ApiKeyStore | None = None,
                       limiter: PartnerLimiter | None = None,
                       cache: ResponseCache | None = None) -> web.Application:
    """One aiohttp app per listener; routes are matched by our own table, not aiohttp's router.

    ``api_keys``/``limiter``/``cache`` are shared by all listeners (the server owns them); without
    them the app opens the configured key store itself, limits and caches in memory only.
    """
    cfg = state.config.listeners[listener]
    if limiter is None:
        limiter = PartnerLimiter(dataclasses.replace(state.config.ratelimit, redis_url=None))
    if cache is None:  # tests building one app: an in-memory cache of its own, no event feed
        cache = ResponseCache(dataclasses.replace(state.config.cache, backend="memory",
                                                  events_redis_url=None))
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
        auth_filter(listener=listener, config=state.config.api_keys,  # 6. API key → PARTNER_KEY
                    store=api_keys),                            #    (401/403)
        ratelimit_filter(limiter=limiter),                      # 7. partner windows (429)
        # (partner scope goes here, before the cache: it sees every answer, hit or not)
        cache_filter(cache=cache),                              # 8. cached reads; writes invalidate
    ]
    app = web.Application(middlewares=chain, client_max_size=cfg.max_body_bytes)
    app[STATE_KEY] = state
    app[LISTENER_KEY] = listener
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app
