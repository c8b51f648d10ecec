"""Builds the listener applications. The filter chain is this one explicit list.

Listener filters run for every request (aiohttp middlewares); route filters run only on the
routes whose policy needs them (see ``gateway.filters.routing``).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.auth.api_keys import ApiKeyStore
from gateway.auth.operator import operator_auth_filter
from gateway.auth.operator_tokens import is_loopback
from gateway.cache import ResponseCache
from gateway.cache.fetch import declare_route as declare_cache_route
from gateway.filters import (
    RouteFilter,
    error_filter,
    observability_filter,
    request_id_filter,
    route_dispatcher,
)
from gateway.filters.auth import auth_filter
from gateway.filters.cache import cache_filter
from gateway.filters.contract import contract_filter, declare_failures
from gateway.filters.partner_scope import partner_scope_filter
from gateway.filters.ratelimit import declare_decisions, ratelimit_filter
from gateway.filters.usage import usage_filter
from gateway.partner_api.contract import Contract
from gateway.partner_api.openapi import SERVED_AT, load_document, openapi_handler
from gateway.proxy import proxy_handler
from gateway.quotes.api import QuoteService, quotes_handler
from gateway.ratelimit import PartnerLimiter
from gateway.request_keys import LISTENER_KEY, ROUTE_KEY, STATE_KEY
from gateway.state import GatewayState
from gateway.usage import UsageRecorder
from gateway.usage.api import usage_handler
from telemetry.access_log import AccessLog
from telemetry.aiohttp_tracing import server_span_filter


def _route_template(request: web.Request) -> str | None:
    route = request.get(ROUTE_KEY)
    return route.name if route is not None else None


def build_listener_app(state: GatewayState, listener: str, *, access_log: AccessLog,
                       api_keys: ApiKeyStore | None = None,
                       limiter: PartnerLimiter | None = None,
                       cache: ResponseCache | None = None,
                       quotes: QuoteService | None = None,
                       usage: UsageRecorder | None = None) -> web.Application:
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
    if usage is None:  # tests building one app: counted in memory, never flushed (bounded cells)
        usage = UsageRecorder(dataclasses.replace(state.config.usage, redis_url=None))
    tracing = state.tracer_provider is not None
    chain = [
        request_id_filter(trust_inbound=cfg.trust_forwarded),   # 1. id first: everything logs it
        *([server_span_filter(route_name=_route_template,       # 2. SERVER span (only when tracing is
                              trust_traceparent=cfg.trust_forwarded,  # on); an outsider's traceparent
                              tracer_provider=state.tracer_provider)]  # only becomes a link
          if tracing else []),
        observability_filter(listener=listener, access_log=access_log,  # 3. sees the final status
                             tracing=tracing, routes=state.config.routes_for(listener)),
        error_filter(public=listener == "external"),            # 4. exceptions → problem+json
        *([operator_auth_filter(listener=listener,              # 5. operator token (401), where the
                                config=lambda: state.config.operator_auth)]  # internal listener
          if listener == "internal" and not is_loopback(cfg.host) else []),  # binds beyond loopback
    ]
    # the partner API document: compiled once; enforced on every external route under its server URL
    document = load_document() if listener == "external" else None
    contract = Contract.compile(document) if document is not None else None

    # 5. routing: the document's paths and methods (404/405 with its Allow) under its server URL,
    #    route table → ROUTE_KEY, then per route, only where its policy asks for it:
    route_chain = [
        RouteFilter(lambda r: r.auth.required,                  # 6. API key → PARTNER_KEY (401/403)
                    auth_filter(listener=listener, config=state.config.api_keys, store=api_keys)),
        RouteFilter(lambda r: r.auth.required and r.usage,      # 6b. usage per partner per day (in
                    usage_filter(recorder=usage)),              #     memory; flushed in the background)
        RouteFilter(lambda r: r.ratelimit.enabled,              # 7. partner windows (429)
                    ratelimit_filter(limiter=limiter)),
        RouteFilter(lambda r: contract is not None and contract.overlaps(r.prefix),  # 8. the partner API
                    contract_filter()),                         #    document: parameters and bodies
        RouteFilter(lambda r: r.partner_scope is not None,      # 9. own orders only (before the
                    partner_scope_filter()),                    #    cache: it sees every answer)
        RouteFilter(lambda r: r.cache is not None,              # 10. cached reads; writes invalidate
                    cache_filter(cache=cache)),
    ]
    if contract is not None:  # validation failures of every operation x tier exist at 0
        declare_failures(contract, state.config.ratelimit.tiers)
    for route in state.config.routes_for(listener):  # cached routes' read results exist at 0
        if route.cache is not None:
            declare_cache_route(route.name)
    declare_decisions(state.config.ratelimit, state.config.routes_for(listener))  # and decisions
    app = web.Application(middlewares=chain, client_max_size=cfg.max_body_bytes)
    app[STATE_KEY] = state
    app[LISTENER_KEY] = listener
    if quotes is None and state.config.quotes is not None:  # tests building one app
        quotes = QuoteService(state.config.quotes, tracer_provider=state.tracer_provider)
    handlers: dict[str | None, Handler] = {None: proxy_handler}
    if quotes is not None:
        handlers["quotes"] = quotes_handler(quotes)
    handlers["usage"] = usage_handler(usage)
    if listener == "external":  # the partner API document: no route, no key, ahead of the table
        app.router.add_route("*", SERVED_AT, openapi_handler(document=document))
    app.router.add_route("*", "/{tail:.*}", route_dispatcher(listener=listener, route_filters=route_chain,
                                                             handlers=handlers, contract=contract))
    return app
