"""The innermost handler: send the request to the route's cluster and relay the answer.

Small bodies (known length up to ``BUFFER_LIMIT``) are read whole, which lets
the cluster retry idempotent requests; larger or chunked bodies are streamed
in both directions under the route's size limit and body timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import metrics
from gateway.errors import PayloadTooLarge, RequestTimeout, UpstreamError
from gateway.request_keys import (
    LISTENER_KEY,
    OPERATOR_KEY,
    PARTNER_KEY,
    REQUEST_BODY_KEY,
    REQUEST_ID_KEY,
    RESPONSE_CAP_KEY,
    ROUTE_KEY,
    STATE_KEY,
    UPSTREAM_BODY_KEY,
)
from gateway.route_table import Route
from gateway.upstream_answers import error_answer, read_whole
from gateway.upstreams.transport import UpstreamResponse
from resilience.forwarding import client_response_headers, upstream_request_headers
from resilience.problem import SERVER_HEADER
from telemetry.aiohttp_tracing import client_span, set_response_status

BUFFER_LIMIT = 64 * 1024
RESPONSE_BUFFER_LIMIT = 256 * 1024


class _BodyStream:
    """Streams the client body to the cluster, enforcing the route's size limit and idle timeout."""

    def __init__(self, request: web.Request, route: Route) -> None:
        self.request = request
        self.route = route
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        while True:
            try:
                async with asyncio.timeout(self.route.body_timeout):
                    chunk = await self.request.content.readany()
            except TimeoutError:
                self.error = RequestTimeout(f"request body not received within {self.route.body_timeout} s")
                raise self.error from None
            if not chunk:
                return
            received += len(chunk)
            if received > self.route.max_body_bytes:
                self.error = PayloadTooLarge(f"request body exceeds {self.route.max_body_bytes} bytes")
                raise self.error
            yield chunk


def _reject(listener: str, reason: str, exc: Exception) -> Exception:
    metrics.REQUEST_BODY_REJECTED.labels(listener=listener, reason=reason).inc()
    return exc


async def _request_body(request: web.Request, route: Route, listener: str) -> bytes | _BodyStream | None:
    if UPSTREAM_BODY_KEY in request:
        return request[UPSTREAM_BODY_KEY]
    if REQUEST_BODY_KEY in request:  # read (and checked) by the contract filter: the stream is spent
        return request[REQUEST_BODY_KEY]
    if not request.body_exists:
        return None
    length = request.content_length
    if length is not None and length > route.max_body_bytes:
        raise _reject(listener, "too_large",
                      PayloadTooLarge(f"request body of {length} bytes exceeds {route.max_body_bytes}"))
    if length is None or length > BUFFER_LIMIT:
        return _BodyStream(request, route)
    try:
        async with asyncio.timeout(route.body_timeout):
            return await request.content.readexactly(length)
    except TimeoutError:
        raise _reject(listener, "timeout",
                      RequestTimeout(f"request body not received within {route.body_timeout} s")) from None
    except asyncio.IncompleteReadError:
        raise _reject(listener, "incomplete", RequestTimeout("request body ended early")) from None


async def _relay(request: web.Request, upstream: UpstreamResponse, streaming: list[web.StreamResponse],
                 listener: str) -> web.StreamResponse:
    headers = client_response_headers(upstream.headers)
    headers["Server"] = SERVER_HEADER
    length = upstream.content_length
    if request.method == "HEAD" or upstream.status in (204, 304):
        return web.Response(status=upstream.status, headers=headers)
    cap = request.get(RESPONSE_CAP_KEY)
    if upstream.status >= 400 and cap is None:  # (a filter that inspects the answer re-issues errors)
        return await error_answer(upstream, headers, request[REQUEST_ID_KEY], public=listener == "external")
    if length is not None and length <= RESPONSE_BUFFER_LIMIT:
        return web.Response(status=upstream.status, headers=headers, body=await upstream.read())
    if cap is not None:  # a filter inspects this answer: never stream it past that filter
        return web.Response(status=upstream.status, headers=headers, body=await read_whole(upstream, cap))
    response = web.StreamResponse(status=upstream.status, headers=headers)
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    streaming.append(response)
    async for chunk in upstream.iter_any():
        await response.write(chunk)
    await response.write_eof()
    return response


def _abort(request: web.Request, response: web.StreamResponse, listener: str) -> web.StreamResponse:
    """Headers are already on the wire, so a problem+json answer is impossible: cut the connection
    (as Envoy resets the stream); the client sees a truncated body, never a wrong complete one."""
    metrics.RESPONSES_ABORTED.labels(listener=listener).inc()
    if request.transport is not None:
        request.transport.abort()
    return response


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward to the matched route's cluster (balancing, retries and timeouts live in the cluster)."""
    route = request[ROUTE_KEY]
    state = request.app[STATE_KEY]
    listener = request.app[LISTENER_KEY]
    listener_cfg = state.config.listeners[listener]
    body = await _request_body(request, route, listener)
    headers = upstream_request_headers(request.headers, client_ip=request.remote, scheme=request.scheme,
                                       host=request.host, request_id=request[REQUEST_ID_KEY],
                                       trusted=listener_cfg.trust_forwarded,
                                       strip_credentials=PARTNER_KEY in request or OPERATOR_KEY in request,
                                       allow=listener_cfg.forward_request_headers)
    cluster = state.clusters.get(route.cluster)
    streaming: list[web.StreamResponse] = []
    path_qs = route.upstream_path(request.raw_path)
    try:
        if state.tracer_provider is None:  # the hot path pays nothing for tracing when it is off
            async with cluster.request(request.method, path_qs, headers=headers, body=body,
                                       timeouts=route.timeouts, retry=route.retry,
                                       priority=route.priority) as upstream:
                return await _relay(request, upstream, streaming, listener)
        async with client_span(request.method, f"http://{route.cluster}{path_qs}", headers,
                               peer_service=route.cluster, url_template=route.rewrite_prefix or route.prefix,
                               tracer_provider=state.tracer_provider) as span, \
                cluster.request(request.method, path_qs, headers=headers, body=body,
                                timeouts=route.timeouts, retry=route.retry,
                                priority=route.priority) as upstream:
            set_response_status(span, upstream.status, error_from=500)
            return await _relay(request, upstream, streaming, listener)
    except (UpstreamError, TimeoutError):  # transport errors arrive translated by the cluster
        if streaming:
            return _abort(request, streaming[0], listener)
        raise
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError: the *client* went away
        if streaming:  # logged with the status it was sent, as NGINX does; not an upstream failure
            if request.transport is not None:
                request.transport.abort()
            return streaming[0]
        raise
    except (PayloadTooLarge, RequestTimeout) as exc:  # raised by _BodyStream, passed through the cluster
        reason = "too_large" if isinstance(exc, PayloadTooLarge) else "timeout"
        raise _reject(listener, reason, exc) from None
