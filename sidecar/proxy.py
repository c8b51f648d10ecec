"""The proxy handler: one request to the legacy instance, its answer relayed as it comes.

Request bodies are streamed (``Content-Length`` kept when the client sent one: legacy
servers may not take chunked uploads); answers up to 256 KiB are relayed in one write,
larger ones streamed. Header rewriting is :mod:`resilience.forwarding`'s (hop-by-hop
removal, ``X-Forwarded-*``, ``X-Request-ID``). Failures before the answer's headers
become problem+json: refused/reset → 502, timeout → 504. A failure mid-body cuts the
connection: the client sees a truncated body, never a wrong complete one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.trace import Span
from yarl import URL

from resilience.forwarding import (
    NOT_FORWARDED_CONNECT_FAILURE,
    NOT_FORWARDED_HEADER,
    client_response_headers,
    upstream_request_headers,
)
from resilience.problem import problem_response
from sidecar import metrics
from sidecar.proxy_events import event_from_answer, valid_traceparent, wants_body
from sidecar.request_keys import PROXY_STATE, REQUEST_ID, ROUTE, UPSTREAM_ERROR, ProxyState
from telemetry.aiohttp_tracing import client_span, set_response_status
from telemetry.propagation import inject

RESPONSE_BUFFER_LIMIT = 256 * 1024
EVENT_BODY_LIMIT = 1024 * 1024
_NEVER_FORWARD = ("Expect",)  # aiohttp already answered 100-continue to the client


class UpstreamFailure(Exception):
    """The legacy instance did not answer; ``reason`` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _classify(exc: BaseException) -> UpstreamFailure:
    if isinstance(exc, TimeoutError):  # ours, or aiohttp's connect timeout (a TimeoutError too)
        return UpstreamFailure("timeout", f"no answer from the legacy in time ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamFailure("connect_error", f"cannot connect to the legacy instance: {exc.os_error}")
    return UpstreamFailure("reset", f"the legacy instance dropped the request: {type(exc).__name__}")


def _upstream_headers(request: web.Request) -> CIMultiDict[str]:
    headers = upstream_request_headers(request.headers, client_ip=request.remote, scheme=request.scheme,
                                       host=request.host, request_id=request[REQUEST_ID], trusted=True)
    for name in _NEVER_FORWARD:
        headers.popall(name, None)
    if request.body_exists and request.content_length is not None:
        headers["Content-Length"] = str(request.content_length)
    return headers


@asynccontextmanager
async def _maybe_client_span(state: ProxyState, method: str, url: URL, headers: CIMultiDict[str],
                             route: str) -> AsyncIterator[Span | None]:
    if state.tracer_provider is None:  # tracing off: no span work on the hot path
        yield None
        return
    async with client_span(method, url, headers, peer_service=state.config.kind, url_template=route,
                           tracer_provider=state.tracer_provider) as span:
        yield span


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse, state: ProxyState,
                 route: str) -> web.StreamResponse:
    headers = client_response_headers(upstream.headers)
    if "Server" in upstream.headers:  # transparent: the legacy's own Server header, not aiohttp's
        headers["Server"] = upstream.headers["Server"]
    headers["X-Request-ID"] = request[REQUEST_ID]
    status, length = upstream.status, upstream.content_length
    if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return web.Response(status=status, headers=headers)
    if wants_body(state.config.kind, request.method, route, status) and state.publisher is not None \
            and length is not None and length <= EVENT_BODY_LIMIT:
        body = await upstream.read()
        _publish(request, state, route, body)
        return web.Response(status=status, headers=headers, body=body)
    if length is not None and length <= RESPONSE_BUFFER_LIMIT:
        return web.Response(status=status, headers=headers, body=await upstream.read())
    response = web.StreamResponse(status=status, headers=headers)
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError):
        request[UPSTREAM_ERROR] = "reset"
        metrics.UPSTREAM_ERRORS.labels(state.config.kind, state.config.instance_id, "reset").inc()
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


def _publish(request: web.Request, state: ProxyState, route: str, body: bytes) -> None:
    carrier: dict[str, str] = {}
    inject(carrier)  # the SERVER span's context when tracing is on
    traceparent = carrier.get("traceparent") or valid_traceparent(request.headers.get("traceparent"))
    event = event_from_answer(route, body, instance=state.config.instance_id, traceparent=traceparent)
    if event is not None and state.publisher is not None:
        state.publisher.submit(event)


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward the request to the legacy instance and relay its answer."""
    state = request.app[PROXY_STATE]
    assert state.session is not None, "the proxy app was not started"
    route = request[ROUTE]
    url = URL(state.config.upstream_base + request.rel_url.raw_path_qs, encoded=True)
    headers = _upstream_headers(request)
    body = request.content if request.body_exists else None
    try:
        async with _maybe_client_span(state, request.method, url, headers, route) as span:
            async with asyncio.timeout(state.config.response_timeout):
                upstream = await state.session.request(request.method, url, headers=headers, data=body,
                                                       allow_redirects=False)
            async with upstream:
                if span is not None:
                    set_response_status(span, upstream.status, error_from=500)
                return await _relay(request, upstream, state, route)
    except (aiohttp.ClientError, TimeoutError) as exc:
        failure = _classify(exc)
    request[UPSTREAM_ERROR] = failure.reason
    metrics.UPSTREAM_ERRORS.labels(state.config.kind, state.config.instance_id, failure.reason).inc()
    timeout = failure.reason == "timeout"
    # Only a refused/unreachable connect proves the legacy never saw the request: the gateway may
    # then send it to another instance (a reset or timeout may have reached it: no header).
    not_forwarded = ({NOT_FORWARDED_HEADER: NOT_FORWARDED_CONNECT_FAILURE}
                     if failure.reason == "connect_error" else None)
    return problem_response(status=504 if timeout else 502,
                            title="Upstream timeout" if timeout else "Bad gateway",
                            type_slug="upstream-timeout" if timeout else "upstream-unavailable",
                            detail=str(failure), request_id=request[REQUEST_ID],
                            # reason: connect_error = the legacy was never reached (safe to send again)
                            extra={"upstream": state.config.instance_id, "reason": failure.reason},
                            headers=not_forwarded)
