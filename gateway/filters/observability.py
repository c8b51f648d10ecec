"""Observability filter: after the response, record metrics and write the access log.

It wraps the error filter so it sees the final status of every request,
including problem+json answers; a client that disconnects mid-request is
recorded with the NGINX convention 499 (:mod:`telemetry.request_observer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway import metrics
from gateway.request_keys import REQUEST_ID_KEY, ROUTE_KEY
from gateway.route_table import Route
from telemetry.access_log import AccessLog
from telemetry.request_observer import request_observer_filter

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


class _ListenerObserver:
    """Per request of one listener: in-flight count, RED series, the ``gateway.access`` line.

    Caches labelled metric children: ``labels()`` is too slow for every request.
    """

    def __init__(self, listener: str, access_log: AccessLog) -> None:
        self.listener = listener
        self.access_log = access_log
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

    def started(self, request: web.Request) -> None:
        self.in_flight += 1

    def finished(self, request: web.Request, status: int, response: web.StreamResponse | None,
                 duration: float, trace_id: str | None, span_id: str | None) -> None:
        self.in_flight -= 1
        route = request.get(ROUTE_KEY)
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        route_name = route.name if route is not None else "unmatched"
        self.observe(route_name, method, status, duration)
        fields = {"gateway.listener": self.listener, "gateway.route": route_name}
        if route is not None and route.cluster:
            fields["gateway.cluster"] = route.cluster
        self.access_log.write(request, status=status, duration_s=duration,
                              request_id=request.get(REQUEST_ID_KEY, ""),
                              bytes_out=response.content_length if response is not None else None,
                              trace_id=trace_id, span_id=span_id, fields=fields)


def observability_filter(*, listener: str, access_log: AccessLog, tracing: bool = False,
                         routes: Iterable[Route] = ()) -> Middleware:
    """Times the request, counts it by route template / method / status class, logs it.

    With ``tracing`` the access-log line carries ``trace.id``/``span.id`` of the SERVER span.
    ``routes`` (the listener's route table) get their series at 0 from start-up.
    """
    observer = _ListenerObserver(listener, access_log)
    observer.declare(routes)
    return request_observer_filter(observer, tracing=tracing)
