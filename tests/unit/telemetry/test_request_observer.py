"""The shared observability filter and access log: the status, time and ids every server records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.typedefs import Handler

from telemetry.access_log import AccessLog
from telemetry.request_observer import CLIENT_CLOSED, ErrorAnswer, request_observer_filter
from tests.support.spans import Spans


class Recorder:
    """A RequestObserver that keeps what it was told."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.calls: list[tuple[int, web.StreamResponse | None, str | None, str | None]] = []
        self.durations: list[float] = []

    def started(self, request: web.Request) -> None:
        self.paths.append(request.path)

    def finished(self, request: web.Request, status: int, response: web.StreamResponse | None,
                 duration: float, trace_id: str | None, span_id: str | None) -> None:
        self.calls.append((status, response, trace_id, span_id))
        self.durations.append(duration)


async def _run(handler: Handler, *, tracing: bool = False, on_error: ErrorAnswer | None = None,
               ) -> tuple[Recorder, web.StreamResponse]:
    recorder = Recorder()
    middleware = request_observer_filter(recorder, tracing=tracing, on_error=on_error)
    response = await middleware(make_mocked_request("GET", "/orders"), handler)
    return recorder, response


async def test_an_answer_is_recorded_with_its_status_after_the_handler_ran() -> None:
    answer = web.Response(status=201)

    async def handler(request: web.Request) -> web.StreamResponse:
        return answer

    recorder, response = await _run(handler)
    assert response is answer
    assert recorder.paths == ["/orders"]
    assert recorder.calls == [(201, answer, None, None)]
    assert recorder.durations[0] >= 0


@pytest.mark.parametrize(("raised", "status"), [
    (web.HTTPNotFound(), 404), (web.HTTPFound("/elsewhere"), 302),
    (asyncio.CancelledError(), CLIENT_CLOSED), (RuntimeError("bug"), 500),
])
async def test_what_a_handler_raises_is_recorded_and_raised_on(raised: BaseException, status: int) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise raised

    recorder = Recorder()
    middleware = request_observer_filter(recorder, tracing=False)
    with pytest.raises(type(raised)):
        await middleware(make_mocked_request("GET", "/orders"), handler)
    assert recorder.calls == [(status, None, None, None)]


async def test_an_unexpected_error_can_be_answered_and_is_recorded_with_that_answer() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("bug")

    answer = web.Response(status=503)
    recorder, response = await _run(handler, on_error=lambda request, exc: answer)
    assert response is answer
    assert recorder.calls == [(503, answer, None, None)]


async def test_with_tracing_the_ids_are_those_of_the_current_span(spans: Spans) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response()

    with spans.provider.get_tracer("t").start_as_current_span("GET /orders") as span:
        recorder, _ = await _run(handler, tracing=True)
    context = span.get_span_context()
    assert recorder.calls[0][2:] == (format(context.trace_id, "032x"), format(context.span_id, "016x"))


async def test_an_access_log_line_has_the_ecs_fields_and_the_servers_own(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(service_name="sidecar-mes", dataset="sidecar.access", path=str(path),
                    fields={"sidecar.kind": "mes", "sidecar.instance": "mes-1"})
    request = make_mocked_request("GET", "/orders?api_key=s3cret&page=2",
                                  headers={"User-Agent": "curl/8", "X-Request-ID": "ignored-here"})
    log.write(request, status=502, duration_s=0.25, request_id="req-0001", bytes_out=17,
              trace_id="a" * 32, span_id="b" * 16, fields={"sidecar.route": "/orders"})
    log.write(request, status=200, duration_s=0.001, request_id="req-0002", bytes_out=None)
    await log.aclose()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first.pop("@timestamp").endswith("Z")
    assert first == {
        "log.level": "info", "log.logger": "sidecar.access", "message": "GET /orders 502",
        "service.name": "sidecar-mes", "event.kind": "event", "event.category": "web",
        "event.dataset": "sidecar.access", "event.duration": 250_000_000, "event.outcome": "failure",
        "http.request.method": "GET", "http.request.id": "req-0001", "http.response.status_code": 502,
        "url.path": "/orders", "client.ip": request.remote, "trace.id": "a" * 32, "span.id": "b" * 16,
        "url.query": "api_key=[REDACTED]&page=2", "user_agent.original": "curl/8",
        "http.response.body.bytes": 17, "sidecar.kind": "mes", "sidecar.instance": "mes-1",
        "sidecar.route": "/orders"}
    absent: dict[str, Any] = {k: second.get(k) for k in ("trace.id", "span.id", "http.response.body.bytes",
                                                        "sidecar.route")}
    assert absent == dict.fromkeys(absent)
    assert (second["event.outcome"], second["sidecar.instance"]) == ("success", "mes-1")
