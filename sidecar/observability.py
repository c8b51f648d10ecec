"""After each request: RED metrics by route template, one access-log line, in-flight gauge.

Sits inside the SERVER span (so the log line carries its trace/span ids) and outside
the proxy handler, so it sees every final status, problem+json answers included.
A client that goes away mid-request is recorded as 499 (the NGINX convention; see
:mod:`telemetry.request_observer`); an unexpected exception becomes a logged 500 problem+json.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from resilience.problem import problem_response
from sidecar import metrics
from sidecar.request_keys import REQUEST_ID, ROUTE, UPSTREAM_ERROR
from sidecar.routes import TEMPLATES, method_label, route_template
from telemetry.access_log import AccessLog
from telemetry.request_observer import request_observer_filter

logger = logging.getLogger("sidecar.proxy")


class _RedObserver:
    """Per request: in-flight gauge, RED series, the ``sidecar.access`` line.

    Caches labelled children per (route, method, status): ``labels()`` is slow per request.
    """

    def __init__(self, kind: str, instance: str, access_log: AccessLog) -> None:
        self.kind, self.instance = kind, instance
        self.access_log = access_log
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

    def started(self, request: web.Request) -> None:
        request[ROUTE] = route_template(self.kind, request.path)
        self.in_flight.inc()

    def finished(self, request: web.Request, status: int, response: web.StreamResponse | None,
                 duration: float, trace_id: str | None, span_id: str | None) -> None:
        self.in_flight.dec()
        route = request[ROUTE]
        self.observe(route, method_label(request.method), status, duration)
        fields = {"sidecar.route": route}
        if upstream_error := request.get(UPSTREAM_ERROR):
            fields["error.type"] = f"upstream_{upstream_error}"
        self.access_log.write(
            request, status=status, duration_s=duration, request_id=request.get(REQUEST_ID, ""),
            bytes_out=response.body_length if response is not None and response.prepared
            else (response.content_length if response is not None else None),
            trace_id=trace_id, span_id=span_id, fields=fields)


def _internal_error(request: web.Request, exc: Exception) -> web.StreamResponse:
    logger.exception("unexpected error proxying %s %s", request.method, request[ROUTE])
    return problem_response(status=500, title="Internal error", type_slug="internal",
                            detail="the sidecar failed; see its log", request_id=request.get(REQUEST_ID))


def observability_filter(*, kind: str, instance: str, access_log: AccessLog) -> Middleware:
    """Records every request; an unexpected exception becomes a logged 500 problem+json."""
    return request_observer_filter(_RedObserver(kind, instance, access_log), tracing=True,
                                   on_error=_internal_error)
