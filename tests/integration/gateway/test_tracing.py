"""Spans the gateway emits (collected with the OTel SDK's in-memory exporter)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import gateway_config, run_gateway

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp, exporter


async def test_internal_request_continues_the_callers_trace_to_the_upstream(tmp_path: Path) -> None:
    tp, exporter = provider()
    async with fake_upstream() as up:
        cfg = gateway_config(tmp_path, clusters={"mes": {"endpoints": [up.url]}}, routes=[
            {"name": "echo", "listener": "internal", "prefix": "/echo", "cluster": "mes"},
            {"name": "partner-echo", "listener": "external", "prefix": "/partner/echo", "cluster": "mes",
             "rewrite_prefix": "/echo", "auth": {"required": False}}])
        async with run_gateway(cfg, tmp_path, tracer_provider=tp) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.internal}/echo", headers={"traceparent": TRACEPARENT}) as resp:
                echoed = await resp.json()
            async with s.get(f"{gw.external}/partner/echo", headers={"traceparent": TRACEPARENT}) as resp:
                external_echo = await resp.json()
    spans = exporter.get_finished_spans()
    server = next(sp for sp in spans if sp.kind == SpanKind.SERVER and sp.name == "GET echo")
    client = next(sp for sp in spans if sp.kind == SpanKind.CLIENT and sp.parent is not None
                  and sp.parent.span_id == server.context.span_id)
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == CALLER_SPAN
    upstream_tp = {k.lower(): v for k, v in echoed["headers"].items()}["traceparent"]
    assert upstream_tp.split("-")[1] == CALLER_TRACE
    assert upstream_tp.split("-")[2] == format(client.context.span_id, "016x")
    # external: a partner's traceparent starts a new trace and is only linked
    ext = next(sp for sp in spans if sp.kind == SpanKind.SERVER and sp.name == "GET partner-echo")
    assert format(ext.context.trace_id, "032x") != CALLER_TRACE
    assert [format(link.context.trace_id, "032x") for link in ext.links] == [CALLER_TRACE]
    ext_tp = {k.lower(): v for k, v in external_echo["headers"].items()}["traceparent"]
    assert ext_tp.split("-")[1] == format(ext.context.trace_id, "032x")
    # the access log line carries the trace id of the request
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert any(line.get("trace.id") == CALLER_TRACE and line["gateway.route"] == "echo" for line in lines)
