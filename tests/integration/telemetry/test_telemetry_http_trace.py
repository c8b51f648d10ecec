"""Two real aiohttp apps on port 0: server middleware + client span give one trace, correctly linked."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, TracerProvider
from yarl import URL

from telemetry import client_span, server_span_filter, set_response_status, setup_tracing
from telemetry.logging import EcsJsonFormatter

INCOMING_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
INCOMING_SPAN_ID = 0x00F067AA0BA902B7
INCOMING = {"traceparent": f"00-{INCOMING_TRACE_ID:032x}-{INCOMING_SPAN_ID:016x}-01"}
BACKEND_URL: web.AppKey[URL] = web.AppKey("backend_url", URL)
TIMEOUT = aiohttp.ClientTimeout(total=10)
Recorder = tuple[TracerProvider, InMemorySpanExporter]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "PROMETHEUS_MULTIPROC_DIR")):
            monkeypatch.delenv(name)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("test", exporter=exporter, sample_ratio=1.0, enabled=True, set_global=False)
    assert provider is not None
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def backend_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EcsJsonFormatter("backend"))
    logger = logging.getLogger("tests.backend")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def finished(recorder: Recorder) -> dict[tuple[SpanKind, str], ReadableSpan]:
    provider, exporter = recorder
    provider.force_flush()  # type: ignore[attr-defined]
    return {(span.kind, span.name): span for span in exporter.get_finished_spans()}


def backend_app(provider: TracerProvider | None) -> web.Application:
    async def order(request: web.Request) -> web.Response:
        logging.getLogger("tests.backend").info("serving order")
        return web.json_response({"traceparent": request.headers.get("traceparent")})

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("legacy MES crashed")

    app = web.Application(middlewares=[server_span_filter(tracer_provider=provider)])
    app.router.add_get("/orders/{order_id}", order)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/boom", boom)
    return app


def front_app(provider: TracerProvider | None, backend_url: URL, *, trust: bool = True) -> web.Application:
    async def quote(request: web.Request) -> web.Response:
        target = request.app[BACKEND_URL] / request.match_info["path"]
        headers: dict[str, str] = {}
        async with client_span("GET", target.with_query(api_key="k"), headers, peer_service="mes",
                               url_template="/orders/{order_id}", tracer_provider=provider) as span, \
                aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                session.get(target, headers=headers) as response:
            set_response_status(span, response.status)
            if response.status != 200:
                return web.Response(status=502)
            return web.json_response(await response.json())

    app = web.Application(middlewares=[server_span_filter(tracer_provider=provider, trust_traceparent=trust)])
    app[BACKEND_URL] = backend_url
    app.router.add_get("/quotes/{path:.+}", quote)
    return app


async def call_front(provider: TracerProvider | None, path: str, *,
                     trust: bool = True) -> aiohttp.ClientResponse:
    async with TestServer(backend_app(provider)) as backend, \
            TestServer(front_app(provider, backend.make_url("/"), trust=trust)) as front, \
            aiohttp.ClientSession(timeout=TIMEOUT) as client, \
            client.get(front.make_url(path), headers=INCOMING) as response:
        await response.read()
        return response


async def test_one_trace_spans_caller_front_client_and_backend(recorder, backend_log):
    response = await call_front(recorder[0], "/quotes/orders/O-42")
    assert response.status == 200
    spans = finished(recorder)
    front = spans[SpanKind.SERVER, "GET /quotes/{path}"]
    client = spans[SpanKind.CLIENT, "GET /orders/{order_id}"]
    backend = spans[SpanKind.SERVER, "GET /orders/{order_id}"]

    assert {s.context.trace_id for s in (front, client, backend)} == {INCOMING_TRACE_ID}
    assert front.parent.span_id == INCOMING_SPAN_ID
    assert front.parent.is_remote
    assert client.parent.span_id == front.context.span_id
    assert backend.parent.span_id == client.context.span_id
    assert backend.parent.is_remote

    assert backend.attributes["http.route"] == "/orders/{order_id}"
    assert backend.attributes["url.path"] == "/orders/O-42"
    assert backend.attributes["http.request.method"] == "GET"
    assert backend.attributes["http.response.status_code"] == 200
    assert backend.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["peer.service"] == "mes"
    assert "api_key" not in client.attributes["url.full"]
    assert client.attributes["http.response.status_code"] == 200

    line = json.loads(backend_log.getvalue().splitlines()[0])
    assert line["trace.id"] == f"{INCOMING_TRACE_ID:032x}"
    assert line["span.id"] == f"{backend.context.span_id:016x}"


async def test_5xx_marks_server_and_client_spans_as_errors(recorder):
    response = await call_front(recorder[0], "/quotes/unavailable")
    assert response.status == 502
    spans = finished(recorder)
    backend = spans[SpanKind.SERVER, "GET /unavailable"]
    client = spans[SpanKind.CLIENT, "GET /orders/{order_id}"]
    assert backend.status.status_code is StatusCode.ERROR
    assert backend.attributes["http.response.status_code"] == 503
    assert client.status.status_code is StatusCode.ERROR
    assert spans[SpanKind.SERVER, "GET /quotes/{path}"].attributes["error.type"] == "502"


async def test_handler_exception_is_recorded_on_the_server_span(recorder):
    await call_front(recorder[0], "/quotes/boom")
    backend = finished(recorder)[SpanKind.SERVER, "GET /boom"]
    assert backend.status.status_code is StatusCode.ERROR
    assert backend.attributes["error.type"] == "RuntimeError"
    assert backend.attributes["http.response.status_code"] == 500
    assert [event.name for event in backend.events] == ["exception"]


async def test_unmatched_path_is_named_by_method_only_and_4xx_is_not_a_server_error(recorder):
    await call_front(recorder[0], "/quotes/no/such/thing")
    backend = finished(recorder)[SpanKind.SERVER, "GET"]
    assert "http.route" not in backend.attributes
    assert backend.attributes["http.response.status_code"] == 404
    assert backend.status.status_code is StatusCode.UNSET


async def test_untrusted_listener_starts_a_new_trace_linked_to_the_callers(recorder):
    await call_front(recorder[0], "/quotes/orders/O-1", trust=False)
    front = finished(recorder)[SpanKind.SERVER, "GET /quotes/{path}"]
    assert front.parent is None
    assert front.context.trace_id != INCOMING_TRACE_ID
    assert [link.context.span_id for link in front.links] == [INCOMING_SPAN_ID]


async def test_with_tracing_off_nothing_is_injected_and_requests_still_work():
    async with TestServer(backend_app(None)) as backend, \
            TestServer(front_app(None, backend.make_url("/"))) as front, \
            aiohttp.ClientSession(timeout=TIMEOUT) as client, \
            client.get(front.make_url("/quotes/orders/O-1"), headers=INCOMING) as response:
        body = await response.json()
    assert response.status == 200
    assert body == {"traceparent": None}
