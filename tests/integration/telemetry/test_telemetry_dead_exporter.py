"""A dead or stuck trace backend never slows or fails a request.

No wall-clock assertions (speed belongs in bench/): the tests show *why* requests cannot
wait on the backend — exports run on the SDK's worker thread, and a full queue drops spans
instead of pushing back — and that every request still succeeds.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Sequence

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from telemetry import server_span_filter, setup_tracing

REQUESTS = 60
TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def closed_port() -> int:
    """A port nothing listens on: bound by us, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WatchedExporter(SpanExporter):
    """Delegates to ``inner`` and remembers which thread exported and how it went."""

    def __init__(self, inner: SpanExporter | None = None) -> None:
        self.inner = inner
        self.threads: set[str] = set()
        self.results: list[SpanExportResult] = []
        self.exported = 0
        self.called = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.threads.add(threading.current_thread().name)
        self.called.set()
        if self.inner is None:  # a stuck backend: block until the test lets go
            self.release.wait(10)
            result = SpanExportResult.SUCCESS
        else:
            result = self.inner.export(spans)
        self.exported += len(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.release.set()
        if self.inner is not None:
            self.inner.shutdown()


def traced_app(provider: TracerProvider) -> web.Application:
    async def order(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["order_id"])

    app = web.Application(middlewares=[server_span_filter(tracer_provider=provider)])
    app.router.add_get("/orders/{order_id}", order)
    return app


async def run_requests(server: BaseTestServer, count: int) -> list[int]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as client:
        async def one(i: int) -> int:
            async with client.get(server.make_url(f"/orders/O-{i}")) as response:
                await response.read()
                return response.status
        return list(await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 30))


def shutdown_within(provider: TracerProvider, seconds: float) -> bool:
    """Shut the provider down on a helper thread; True if it finished in time."""
    thread = threading.Thread(target=provider.shutdown, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


async def test_dead_otlp_endpoint_fails_exports_on_the_worker_thread_only(monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8")
    exporter = WatchedExporter(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces",
                                                timeout=0.5))
    provider = setup_tracing("gateway", exporter=exporter, enabled=True, set_global=False)
    assert provider is not None
    try:
        async with TestServer(traced_app(provider)) as server:
            statuses = await run_requests(server, REQUESTS)
            assert await asyncio.to_thread(exporter.called.wait, 10)
    finally:
        assert shutdown_within(provider, 10)
    assert statuses == [200] * REQUESTS
    assert exporter.results
    assert set(exporter.results) == {SpanExportResult.FAILURE}
    assert threading.main_thread().name not in exporter.threads
    assert all(name.startswith("OtelBatchSpan") for name in exporter.threads)


async def test_setup_with_a_dead_endpoint_serves_requests_and_shuts_down_promptly(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{closed_port()}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.5")
    provider = setup_tracing("gateway", set_global=False)
    assert provider is not None
    try:
        async with TestServer(traced_app(provider)) as server:
            assert await run_requests(server, REQUESTS) == [200] * REQUESTS
    finally:
        assert shutdown_within(provider, 10)  # the final export to the dead port fails fast


async def test_stuck_backend_drops_spans_when_the_queue_is_full_and_requests_carry_on(monkeypatch):
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "16")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    exporter = WatchedExporter()  # blocks in export() until released
    provider = setup_tracing("gateway", exporter=exporter, enabled=True, set_global=False)
    assert provider is not None
    try:
        async with TestServer(traced_app(provider)) as server:
            assert await run_requests(server, 1) == [200]
            assert await asyncio.to_thread(exporter.called.wait, 10)  # worker thread is now stuck
            statuses = await run_requests(server, REQUESTS)
            assert exporter.exported == 0  # nothing got through, yet every request finished
            exporter.release.set()
    finally:
        exporter.release.set()
        assert shutdown_within(provider, 10)
    assert statuses == [200] * REQUESTS
    # one span in the stuck batch, at most a full queue after it: the rest were dropped
    assert 1 <= exporter.exported <= 1 + 16 < 1 + REQUESTS
    assert threading.main_thread().name not in exporter.threads


async def test_shutdown_gives_up_on_a_stuck_backend_instead_of_waiting_30_seconds(monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    exporter = WatchedExporter()  # never released by the test: only exporter.shutdown() lets go
    provider = setup_tracing("gateway", exporter=exporter, enabled=True, set_global=False)
    assert provider is not None
    async with TestServer(traced_app(provider)) as server:
        assert await run_requests(server, 1) == [200]
        assert await asyncio.to_thread(exporter.called.wait, 10)  # the worker thread now hangs in export
    # the SDK's own shutdown would join the hung worker for 30 s; ours gives up after 2 s
    assert shutdown_within(provider, 8)
