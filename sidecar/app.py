"""Builds the sidecar's two aiohttp apps: the proxy (one explicit middleware list) and admin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from opentelemetry import trace

from sidecar.config import SidecarConfig
from sidecar.events import EventPublisher
from sidecar.observability import observability_filter
from sidecar.proxy import proxy_handler
from sidecar.request_id import request_id_filter
from sidecar.request_keys import PROXY_STATE, ROUTE, ProxyState
from telemetry.access_log import AccessLog
from telemetry.aiohttp_tracing import server_span_filter
from telemetry.tracing import active_tracer

# A proxy forwards the client's headers as they are (see gateway/upstreams/cluster.py).
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def _session_ctx(state: ProxyState) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        state.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=15.0),  # the gateway bounds load
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=state.config.connect_timeout),
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one client's cookies to another
            auto_decompress=False, skip_auto_headers=_SKIP_AUTO_HEADERS, trust_env=False)
        try:
            yield
        finally:
            await state.session.close()
            state.session = None
    return ctx


def build_app(config: SidecarConfig, *, access_log: AccessLog,
              publisher: EventPublisher | None = None,
              tracer_provider: trace.TracerProvider | None = None) -> web.Application:
    """The proxy app. ``tracer_provider`` None → the global one if tracing is set up, else off."""
    effective = tracer_provider if tracer_provider is not None else (
        trace.get_tracer_provider() if active_tracer() is not None else None)
    state = ProxyState(config=config, tracer_provider=effective, publisher=publisher)
    chain = [
        request_id_filter(),                                          # 1. everything logs the id
        server_span_filter(route_name=lambda r: r.get(ROUTE),         # 2. continues the caller's trace
                           tracer_provider=effective),
        observability_filter(kind=config.kind, instance=config.instance_id,  # 3. final status
                             access_log=access_log),
    ]
    app = web.Application(middlewares=chain)
    app[PROXY_STATE] = state
    app.cleanup_ctx.append(_session_ctx(state))
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app
