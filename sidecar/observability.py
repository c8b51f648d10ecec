"""After each request: RED metrics by route template, one access-log line, in-flight gauge.

Sits inside the SERVER span (so the log line carries its trace/span ids) and outside
the proxy handler, so it sees every final status, problem+json answers included.
A client that goes away mid-request is recorded as 499 (the NGINX convention).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from resilience.problem import problem_response
from sidecar import metrics
from sidecar.access_log import SidecarAccessLog
from sidecar.keys import REQUEST_ID, ROUTE, UPSTREAM_ERROR
from sidecar.routes import TEMPLATES, method_label, route_template
from telemetry.tracing import current_trace_ids

logger = logging.getLogger("sidecar.proxy")
CLIENT_CLOSED = 499


class _RedMetrics:
    """Caches labelled children per (route, method, status): ``labels()`` is slow per request."""

    def __init__(self, kind: str, instance: str) -> None:
        self.kind, self.instance = kind, instance
        self.in_flight = metrics.REQUESTS_IN_FLIGHT.labels(kind, instance)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        for route in TEMPLATES[kind]:  # latency series at 0 from start-up: rate() sees the first request
            metrics.REQUEST_DURATION.labels(kind, instance, route)

    def observe(self, route: str, method: str, status: int, duration: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (metrics.REQUESTS.labels(self.kind, self.instance, route, method,
                                                metrics.status_class(status)),
                        metrics.REQUEST_DURATION.labels(self.kind, self.instance, route))
            if len(self._children) < 5_000:
                self._children[key] = children
        children[0].inc()
        children[1].observe(duration)


def observability_filter(*, kind: str, instance: str, access_log: SidecarAccessLog) -> Middleware:
    """Records every request; an unexpected exception becomes a logged 500 problem+json."""
    red = _RedMetrics(kind, instance)

    @web.middleware
    async def observability(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        route = route_template(kind, request.path)
        request[ROUTE] = route
        trace_id, span_id = current_trace_ids()
        red.in_flight.inc()
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception:
            logger.exception("unexpected error proxying %s %s", request.method, route)
            response = problem_response(status=500, title="Internal error", type_slug="internal",
                                        detail="the sidecar failed; see its log",
                                        request_id=request.get(REQUEST_ID))
            return response
        finally:
            duration = time.perf_counter() - start
            red.in_flight.dec()
            red.observe(route, method_label(request.method), status, duration)
            access_log.write_request(
                method=request.method, path=request.path, query=request.query_string, status=status,
                duration_s=duration, route=route, request_id=request.get(REQUEST_ID, ""),
                client_ip=request.remote, user_agent=request.headers.get("User-Agent"),
                bytes_out=response.body_length if response is not None and response.prepared
                else (response.content_length if response is not None else None),
                upstream_error=request.get(UPSTREAM_ERROR), trace_id=trace_id, span_id=span_id)

    return observability
