"""A minimal OTLP/HTTP trace receiver for tests: the real protocol (protobuf over HTTP)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str


@dataclass
class OtlpReceiver:
    """``POST /v1/traces`` collector; ``spans`` fills as the services' batch processors export."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in message.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "?")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(ReceivedSpan(service=service, name=span.name, kind=span.kind,
                                                   trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                                                   parent_span_id=span.parent_span_id.hex()))
        self._arrived.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def start(self) -> OtlpReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_for(self, trace_id: str, services: set[str], timeout: float = 20.0) -> list[ReceivedSpan]:
        """Wait until spans of ``trace_id`` from every service in ``services`` arrived."""
        async with asyncio.timeout(timeout):
            while not services <= {s.service for s in self.trace(trace_id)}:
                self._arrived.clear()
                await self._arrived.wait()
        return self.trace(trace_id)
