"""Observability filter: after the response, record metrics and write the access log.

It wraps the error filter so it sees the final status of every request,
including problem+json answers; a client that disconnects mid-request is
recorded with the NGINX convention 499.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway import metrics
from gateway.access_log import AccessLog
from gateway.request_keys import REQUEST_ID_KEY, ROUTE_KEY
from gateway.route_table import Route
from telemetry.tracing import current_trace_ids

CLIENT_CLOSED = 499
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


class _RequestMetrics:
    """Caches labelled metric children: ``labels()`` is too slow for every request."""

    def __init__(self, listener: str) -> None:
        self.listener = listener
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._in_flight_gauge = metrics.REQUESTS_IN_FLIGHT.labels(listener=listener)
        self.in_flight = 0  # a plain int on the hot path; published at scrape time
        metrics.register_gauge_source(self)

    def declare(self, routes: Iterable[Route]) -> None:
        """Each route's latency and 5xx series at 0 before its first request (the SLO and latency rules
        read them with rate(): a series born with its first 5xx would hide that 5xx)."""
        for route in routes:
            metrics.REQUEST_DURATION.labels(listener=self.listener, route=route.name)
            for method in route.methods & KNOWN_METHODS:
                metrics.REQUESTS.labels(listener=self.listener, route=route.name, method=method,
                                        status_class="5xx")

    def publish_gauges(self) -> None:
        self._in_flight_gauge.set(self.in_flight)

    def observe(self, route: str, method: str, status: int, duration: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.REQUESTS.labels(listener=self.listener, route=route, method=method,
                                        status_class=_status_class(status)),
                metrics.REQUEST_DURATION.labels(listener=self.listener, route=route),
            )
            if len(self._children) < 10_000:  # methods/routes are bounded; statuses nearly so
                self._children[key] = children
        children[0].inc()
        children[1].observe(duration)


def observability_filter(*, listener: str, access_log: AccessLog, tracing: bool = False,
                         routes: Iterable[Route] = ()) -> Middleware:
    """Times the request, counts it by route template / method / status class, logs it.

    With ``tracing`` the access-log line carries ``trace.id``/``span.id`` of the SERVER span.
    ``routes`` (the listener's route table) get their series at 0 from start-up.
    """
    request_metrics = _RequestMetrics(listener)
    request_metrics.declare(routes)
    known_methods = KNOWN_METHODS

    @web.middleware
    async def observability(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        trace_id, span_id = current_trace_ids() if tracing else (None, None)
        request_metrics.in_flight += 1
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            duration = time.perf_counter() - start
            request_metrics.in_flight -= 1
            route = request.get(ROUTE_KEY)
            method = request.method if request.method in known_methods else "OTHER"
            route_name = route.name if route is not None else "unmatched"
            request_metrics.observe(route_name, method, status, duration)
            access_log.write(
                method=request.method, path=request.path, query=request.query_string, status=status,
                duration_s=duration, listener=request_metrics.listener, route=route_name,
                cluster=route.cluster if route is not None else None,
                request_id=request.get(REQUEST_ID_KEY, ""), client_ip=request.remote,
                user_agent=request.headers.get("User-Agent"),
                bytes_out=response.content_length if response is not None else None,
                trace_id=trace_id, span_id=span_id)

    return observability
