"""Thin OpenTelemetry spans for aiohttp: a SERVER-span middleware and a CLIENT-span helper.

Hand-written instead of the contrib auto-instrumentation so the gateway hot path
pays only for what we use, and nothing at all when tracing is off: the middleware
factory decides once, when it is built, and returns a pass-through otherwise.
Attribute names follow the stable HTTP semantic conventions. Query strings are
never recorded (they may carry API keys); ``url.path`` is the raw path, the span
*name* and ``http.route`` use the route template only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from yarl import URL

from telemetry.context import request_id_var
from telemetry.propagation import extract, inject
from telemetry.tracing import active_tracer

__all__ = ["client_span", "default_route_name", "server_span_filter", "set_response_status"]

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
_STATUS_ERROR = Status(StatusCode.ERROR)


def default_route_name(request: web.Request) -> str | None:
    """The aiohttp resource's template (``/orders/{order_id}``), or None when no route matched."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


def _method(raw: str) -> str:
    method = raw.upper()
    return method if method in _KNOWN_METHODS else "_OTHER"


def set_response_status(span: Span, status_code: int, *, error_from: int = 400) -> None:
    """Record ``http.response.status_code``; ``status_code >= error_from`` marks the span as an error.

    Semantic conventions: 4xx is an error on CLIENT spans (the default), only 5xx on SERVER spans.
    """
    span.set_attribute("http.response.status_code", status_code)
    if status_code >= error_from:
        span.set_attribute("error.type", str(status_code))
        span.set_status(_STATUS_ERROR)


def _record_exception(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        span.record_exception(exc)
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


def _finish_server_span(span: Span, method: str, route: str | None, status: int | None, raised: bool) -> None:
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    if raised:  # error status and error.type already say what failed
        span.set_attribute("http.response.status_code", 500)
    elif status is not None:
        set_response_status(span, status, error_from=500)


def server_span_filter(*, route_name: Callable[[web.Request], str | None] | None = None,
                       trust_traceparent: bool = True,
                       tracer_provider: trace.TracerProvider | None = None) -> Middleware:
    """Middleware: one current SERVER span per request, child of the caller's ``traceparent``.

    ``route_name`` maps a request to its route *template* and is called after the handler, so an
    inner filter may have stored the matched route on the request; default
    :func:`default_route_name`. The span is named ``"{METHOD} {route}"`` (``"{METHOD}"`` when there is
    no route). 5xx and exceptions mark it as an error. ``trust_traceparent=False`` (external
    listeners) starts a new trace that only *links* to the caller's, so outsiders cannot force our
    sampling decision. With tracing off when the factory runs, the middleware is a pass-through:
    set up tracing before building the app.
    """
    tracer = active_tracer(tracer_provider)
    get_route = route_name or default_route_name

    if tracer is None:
        @web.middleware
        async def no_tracing(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await handler(request)

        return no_tracing

    @web.middleware
    async def server_span(request: web.Request, handler: Handler) -> web.StreamResponse:
        method = _method(request.method)
        remote = extract(request.headers, Context())
        links: list[trace.Link] | None = None
        if not trust_traceparent:
            remote_span_context = trace.get_current_span(remote).get_span_context()
            links = [trace.Link(remote_span_context)] if remote_span_context.is_valid else None
            remote = Context()
        span = tracer.start_span(method, context=remote, kind=SpanKind.SERVER, links=links)
        recording = span.is_recording()
        if recording:
            url = request.url
            span.set_attributes({"http.request.method": method, "url.path": request.path,
                                 "url.scheme": request.scheme, "server.address": url.host or "",
                                 "server.port": url.port or 0})
            if method == "_OTHER":
                span.set_attribute("http.request.method_original", request.method)
            request_id = request_id_var.get()
            if request_id is not None:
                span.set_attribute("http.request.id", request_id)
        token = otel_context.attach(trace.set_span_in_context(span, remote))
        status: int | None = None
        raised = False
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # aiohttp's raised responses (404, 302, …)
            status = exc.status
            raise
        except asyncio.CancelledError:  # the client went away: not our error
            if recording:
                span.set_attribute("error.type", "client_closed")
            raise
        except Exception as exc:
            status, raised = 500, True
            _record_exception(span, exc)
            raise
        finally:
            try:
                if recording:
                    _finish_server_span(span, method, get_route(request), status, raised)
            finally:
                otel_context.detach(token)
                span.end()

    return server_span


def _url_attributes(url: URL, method: str, peer_service: str) -> dict[str, str | int]:
    # no userinfo, query or fragment: they may carry secrets and blow up cardinality
    safe = url.with_user(None).with_query(None).with_fragment(None)
    return {"http.request.method": method, "url.full": str(safe), "server.address": url.host or "",
            "server.port": url.port or 0, "peer.service": peer_service}


@asynccontextmanager
async def client_span(method: str, url: str | URL, headers: MutableMapping[str, str], *,
                      peer_service: str, url_template: str | None = None,
                      tracer_provider: trace.TracerProvider | None = None) -> AsyncIterator[Span]:
    """A current CLIENT span around one outgoing HTTP call; injects ``traceparent`` into ``headers``.

    Send the request inside the block and call :func:`set_response_status` with the answer's status.
    ``peer_service`` names the cluster called (``mes``, ``crm``); ``url_template`` (low cardinality,
    e.g. ``/orders/{id}``) is added to the span name. Exceptions are recorded and re-raised; a
    cancellation is not an error. With tracing off it yields a non-recording span and sends nothing.
    """
    tracer = active_tracer(tracer_provider)
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    method = _method(method)
    name = f"{method} {url_template}" if url_template else method
    span = tracer.start_span(name, kind=SpanKind.CLIENT)
    if span.is_recording():
        span.set_attributes(_url_attributes(url if isinstance(url, URL) else URL(url), method, peer_service))
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        inject(headers)  # also when not sampled: the callee must see sampled=0 and not sample either
        try:
            yield span
        except Exception as exc:
            _record_exception(span, exc)
            raise
