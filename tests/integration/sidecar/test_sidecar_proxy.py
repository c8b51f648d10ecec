"""The proxy against a real fake upstream: RED metrics, headers, traces, errors, access log."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from opentelemetry.trace import SpanKind

from devstack.ports import free_port
from tests.integration.sidecar.sidecar_support import (
    access_log_lines,
    in_memory_tracing,
    run_sidecar,
    sample,
    sidecar_config,
)
from tests.support.fake_upstream import fake_upstream

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
LABELS = {"kind": "mes", "legacy_instance": "mes-t"}


def requests(route: str, method: str, status_class: str) -> float:
    return sample("sidecar_requests_total", **LABELS, route=route, method=method, status_class=status_class)


async def test_metrics_count_exactly_the_traffic_sent_per_route_template(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        # the fake upstream answers any path under /status/{code}: map MES routes onto it by status
        config = sidecar_config(up.url, tmp_path)
        before = {key: requests(*key) for key in [("other", "GET", "2xx"), ("other", "POST", "4xx"),
                                                   ("/healthz", "GET", "2xx"), ("other", "GET", "5xx")]}
        hist_before = sample("sidecar_request_duration_seconds_count", **LABELS, route="other")
        async with run_sidecar(config) as sc, aiohttp.ClientSession() as s:
            for _ in range(5):
                async with s.get(f"{sc.url}/status/200") as resp:
                    assert resp.status == 200
            for _ in range(3):
                async with s.post(f"{sc.url}/status/409", data=b"{}") as resp:
                    assert resp.status == 409
            for _ in range(2):
                async with s.get(f"{sc.url}/healthz") as resp:
                    assert resp.status == 200
            async with s.get(f"{sc.url}/status/503") as resp:
                assert resp.status == 503
        assert requests("other", "GET", "2xx") - before[("other", "GET", "2xx")] == 5
        assert requests("other", "POST", "4xx") - before[("other", "POST", "4xx")] == 3
        assert requests("/healthz", "GET", "2xx") - before[("/healthz", "GET", "2xx")] == 2
        assert requests("other", "GET", "5xx") - before[("other", "GET", "5xx")] == 1
        assert sample("sidecar_request_duration_seconds_count", **LABELS, route="other") - hist_before == 9
        assert sample("sidecar_requests_in_flight", **LABELS) == 0


async def test_metrics_endpoint_shows_route_templates_never_raw_ids(tmp_path: Path) -> None:
    async with fake_upstream() as up, run_sidecar(sidecar_config(up.url, tmp_path)) as sc, \
            aiohttp.ClientSession() as s:
        for path in ("/orders/123456", "/orders/98765/status", "/orders", "/price"):
            async with s.get(f"{sc.url}{path}") as resp:
                assert resp.status == 404  # the fake upstream has no such routes: proxied as is
        async with s.get(f"{sc.admin}/metrics") as resp:
            text = await resp.text()
    assert 'route="/orders/{id}"' in text
    assert 'route="/orders/{id}/status"' in text
    label_values = re.findall(r'="([^"]*)"', text)  # sample values may contain any digits
    assert not [v for v in label_values if "123456" in v or "98765" in v]


async def test_request_id_and_traceparent_reach_the_legacy_and_spans_form_one_trace(tmp_path: Path) -> None:
    provider, exporter = in_memory_tracing()
    sent = {"X-Request-ID": "req-abcdef-123", "traceparent": TRACEPARENT,
            "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "drop me"}
    async with fake_upstream() as up, \
            run_sidecar(sidecar_config(up.url, tmp_path), tracer_provider=provider) as sc, \
            aiohttp.ClientSession() as s, s.get(f"{sc.url}/echo?x=1", headers=sent) as resp:
        echoed = await resp.json()
        assert resp.headers["X-Request-ID"] == "req-abcdef-123"
    headers = {k.lower(): v for k, v in echoed["headers"].items()}
    assert echoed["path_qs"] == "/echo?x=1"
    assert headers["x-request-id"] == "req-abcdef-123"
    assert "x-secret-hop" not in headers  # named in Connection: hop-by-hop
    spans = exporter.get_finished_spans()
    server = next(sp for sp in spans if sp.kind == SpanKind.SERVER)
    client = next(sp for sp in spans if sp.kind == SpanKind.CLIENT)
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == CALLER_SPAN
    assert server.name == "GET other"
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    _, trace_id, parent_id, _ = headers["traceparent"].split("-")
    assert (trace_id, parent_id) == (CALLER_TRACE, format(client.context.span_id, "016x"))
    line = next(li for li in access_log_lines(tmp_path / "access.log") if li["url.path"] == "/echo")
    assert line["http.request.id"] == "req-abcdef-123"
    assert line["trace.id"] == CALLER_TRACE
    assert line["span.id"] == format(server.context.span_id, "016x")
    assert line["sidecar.route"] == "other"
    assert line["event.dataset"] == "sidecar.access"


async def test_traceparent_passes_through_untouched_when_tracing_is_off(tmp_path: Path) -> None:
    async with fake_upstream() as up, run_sidecar(sidecar_config(up.url, tmp_path)) as sc, \
            aiohttp.ClientSession() as s, \
            s.get(f"{sc.url}/echo", headers={"traceparent": TRACEPARENT}) as resp:
        echoed = await resp.json()
        generated_id = resp.headers["X-Request-ID"]
    headers = {k.lower(): v for k, v in echoed["headers"].items()}
    assert headers["traceparent"] == TRACEPARENT
    assert headers["x-request-id"] == generated_id
    assert len(generated_id) == 32


async def test_upstream_down_answers_502_problem_json_with_the_request_id(tmp_path: Path) -> None:
    config = sidecar_config(f"http://127.0.0.1:{free_port()}", tmp_path)
    before = sample("sidecar_upstream_errors_total", **LABELS, reason="connect_error")
    async with run_sidecar(config) as sc, aiohttp.ClientSession() as s:
        async with s.get(f"{sc.url}/orders/7", headers={"X-Request-ID": "req-down-0001"}) as resp:
            body = await resp.json(content_type=None)
            assert resp.status == 502
            assert resp.headers["Content-Type"] == "application/problem+json"
        async with s.get(f"{sc.admin}/readyz") as ready:
            assert ready.status == 503
    assert body["status"] == 502
    assert body["instance"] == "urn:request:req-down-0001"
    assert body["reason"] == "connect_error"  # never reached: a pricing worker hands its job back
    assert sample("sidecar_upstream_errors_total", **LABELS, reason="connect_error") - before == 1
    assert requests("/orders/{id}", "GET", "5xx") >= 1


async def test_slow_upstream_answers_504_after_the_configured_timeout(tmp_path: Path) -> None:
    before = sample("sidecar_upstream_errors_total", **LABELS, reason="timeout")
    async with fake_upstream() as up, \
            run_sidecar(sidecar_config(up.url, tmp_path, response_timeout=0.3)) as sc, \
            aiohttp.ClientSession() as s, s.get(f"{sc.url}/hang") as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 504
    assert body["type"].endswith("upstream-timeout")
    assert sample("sidecar_upstream_errors_total", **LABELS, reason="timeout") - before == 1


async def test_large_bodies_are_streamed_both_ways(tmp_path: Path) -> None:
    payload = b"s" * (900 * 1024)  # the fake upstream accepts up to 1 MiB; > our 256 KiB buffer
    async with fake_upstream() as up, run_sidecar(sidecar_config(up.url, tmp_path)) as sc, \
            aiohttp.ClientSession() as s:
        async with s.post(f"{sc.url}/echo", data=payload) as resp:
            echoed = await resp.json()
        async with s.get(f"{sc.url}/drip?chunks=20&interval=0.01") as resp:
            dripped = await resp.read()
        async with s.get(f"{sc.admin}/readyz") as ready:
            assert ready.status == 200
    assert len(echoed["body"]) == len(payload)
    assert {k.lower(): v for k, v in echoed["headers"].items()}["content-length"] == str(len(payload))
    assert dripped == b"x" * 16 * 20
