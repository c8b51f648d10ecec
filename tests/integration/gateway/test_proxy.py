"""The gateway's core chain against real fake-upstream servers on ephemeral ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.support.fake_upstream import FakeUpstream, fake_upstream
from tests.support.gateway import (
    OPERATOR_AUTH,
    OPERATOR_HEADERS,
    GatewayUnderTest,
    gateway_config,
    run_gateway,
)
from tests.support.partner_edge import ECHO_PATH, partner_echo_route

pytestmark = pytest.mark.timeout(60)


def routes() -> list[dict[str, Any]]:
    return [
        partner_echo_route(auth={"required": False}),
        {"name": "echo", "listener": "internal", "prefix": "/echo", "cluster": "mes"},
        {"name": "slow", "listener": "internal", "prefix": "/slow", "cluster": "mes", "methods": ["GET"]},
        {"name": "hang", "listener": "internal", "prefix": "/hang", "cluster": "mes", "methods": ["GET"],
         "timeouts": {"per_try": 0.3, "overall": 0.5}, "retry": {"attempts": 0}},
        {"name": "status", "listener": "internal", "prefix": "/status", "cluster": "mes"},
        {"name": "hang-drip", "listener": "internal", "prefix": "/hang-drip", "cluster": "mes",
         "rewrite_prefix": "/drip", "timeouts": {"per_try": 0.3, "overall": 0.5}},
        {"name": "drip", "listener": "internal", "prefix": "/drip", "cluster": "mes", "methods": ["GET"]},
        {"name": "small-body", "listener": "internal", "prefix": "/echo-small", "cluster": "mes",
         "rewrite_prefix": "/echo", "max_body_bytes": 100, "body_timeout": 0.5},
    ]


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with fake_upstream() as a, fake_upstream() as b:
        yield a, b


@pytest.fixture
async def gw(tmp_path: Path, upstreams: tuple[FakeUpstream, FakeUpstream]) -> AsyncIterator[GatewayUnderTest]:
    a, b = upstreams
    cfg = gateway_config(tmp_path, clusters={"mes": {
        "endpoints": [a.url, b.url], "balancer": "round_robin",
        "health_check": {"path": "/healthz", "interval": 0.2, "timeout": 0.5, "unhealthy_threshold": 1,
                         "healthy_threshold": 1},
        "retry": {"attempts": 2}}}, routes=routes(), operator_auth=OPERATOR_AUTH)
    async with run_gateway(cfg, tmp_path) as gw:
        yield gw


async def test_external_client_asking_for_an_internal_route_gets_404_problem(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.external}/echo") as resp:
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
        body = await resp.json(content_type=None)
        rid = resp.headers["X-Request-ID"]
        assert body["status"] == 404
        assert body["instance"] == f"urn:request:{rid}"


async def test_request_reaches_upstream_with_forwarded_headers_and_request_id(gw: GatewayUnderTest) -> None:
    hostile = {"X-Forwarded-For": "6.6.6.6", "X-Request-ID": "spoofed-request-id", "Connection": "X-Hop",
               "X-Hop": "secret"}
    async with aiohttp.ClientSession() as s, s.get(f"{gw.external}{ECHO_PATH}?x=1",
                                                    headers=hostile) as resp:
        assert resp.status == 200
        echoed = await resp.json()
    assert echoed["path_qs"] == "/echo?x=1"
    headers = {k.lower(): v for k, v in echoed["headers"].items()}
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-request-id"] == resp.headers["X-Request-ID"] != "spoofed-request-id"
    assert "x-hop" not in headers
    assert resp.headers["Server"] == "mes-edge"


async def test_internal_listener_keeps_a_trusted_request_id(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.internal}/echo",
                                                    headers={"X-Request-ID": "operator-req-0001"}) as resp:
        assert resp.headers["X-Request-ID"] == "operator-req-0001"


async def test_round_robin_spreads_requests_over_both_endpoints(
        gw: GatewayUnderTest, upstreams: tuple[FakeUpstream, FakeUpstream]) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(10):
            async with s.get(f"{gw.internal}/echo") as resp:
                assert resp.status == 200
    assert upstreams[0].hits == 5
    assert upstreams[1].hits == 5


async def test_hanging_upstream_gives_504_problem(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.internal}/hang") as resp:
        assert resp.status == 504
        assert resp.content_type == "application/problem+json"
        assert (await resp.json(content_type=None))["type"].endswith("upstream-timeout")


async def test_body_over_the_route_limit_is_413(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{gw.internal}/echo-small", data=b"x" * 101) as resp:
        assert resp.status == 413
        assert resp.content_type == "application/problem+json"


async def test_chunked_body_over_the_limit_is_413_not_500(gw: GatewayUnderTest) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 50

    async with aiohttp.ClientSession() as s, s.post(f"{gw.internal}/echo-small", data=chunks()) as resp:
        assert resp.status == 413


async def test_slow_request_body_gets_408(gw: GatewayUnderTest) -> None:
    host, port = gw.internal.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /echo-small HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")


async def test_post_body_is_relayed_intact(gw: GatewayUnderTest) -> None:
    payload = {"customer": "ACME", "qty": 3}
    async with aiohttp.ClientSession() as s, s.post(f"{gw.internal}/echo", json=payload) as resp:
        echoed = await resp.json()
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == payload


async def test_large_streamed_response_and_request_bodies(gw: GatewayUnderTest) -> None:
    big = b"z" * (300 * 1024)
    async with aiohttp.ClientSession() as s, s.post(f"{gw.internal}/echo", data=big) as resp:
        echoed = await resp.json()
    assert len(echoed["body"]) == len(big)


async def test_upstream_5xx_is_passed_through_after_retries(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.internal}/status/503") as resp:
        assert resp.status == 503


async def test_unknown_method_on_known_path_is_405(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s, s.delete(f"{gw.internal}/slow") as resp:
        assert resp.status == 405
        assert resp.content_type == "application/problem+json"


async def test_no_healthy_endpoint_is_503_and_readyz_says_so(
        gw: GatewayUnderTest, upstreams: tuple[FakeUpstream, FakeUpstream]) -> None:
    for up in upstreams:
        up.set_healthy(False)
    async with aiohttp.ClientSession() as s:
        for _ in range(100):
            async with s.get(f"{gw.admin}/readyz") as ready:
                if ready.status == 503:
                    break
            await asyncio.sleep(0.05)
        assert ready.status == 503
        async with s.get(f"{gw.internal}/echo") as resp:
            assert resp.status == 503
            assert (await resp.json(content_type=None))["type"].endswith("no-healthy-upstream")
            # a 503 says when to come back (make chaos: the CRM's Redis killed left CRM intake with
            # bare 503s from the gateway while its only endpoint was unhealthy)
            assert resp.headers["Retry-After"] == "5"


async def test_admin_exposes_metrics_config_and_upstreams(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.internal}/echo"):
            pass
        async with s.get(f"{gw.admin}/metrics") as resp:
            text = await resp.text()
        expected = 'gateway_requests_total{listener="internal",method="GET",route="echo",status_class="2xx"}'
        assert expected in text
        assert "gateway_upstream_endpoint_healthy" in text
        async with s.get(f"{gw.admin}/config", headers=OPERATOR_HEADERS) as resp:
            cfg = await resp.json()
        assert any(r["name"] == "echo" for r in cfg["routes"])
        async with s.get(f"{gw.admin}/upstreams", headers=OPERATOR_HEADERS) as resp:
            ups = await resp.json()
        assert ups


async def test_access_log_lines_are_ecs_json(gw: GatewayUnderTest, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.internal}/echo?api_key=sekrit") as resp:
        rid = resp.headers["X-Request-ID"]
    log_path = tmp_path / "access.log"
    for _ in range(60):  # the access log flushes at least once a second
        lines = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
        mine = [line for line in lines if line.get("http.request.id") == rid]
        if mine:
            break
        await asyncio.sleep(0.05)
    assert mine, "access log line not written"
    line = mine[0]
    for key in ("@timestamp", "log.level", "message", "service.name", "http.request.method", "url.path",
                "http.response.status_code", "event.duration"):
        assert key in line
    assert isinstance(line["event.duration"], int)
    assert "sekrit" not in json.dumps(line)


async def test_upstream_failing_mid_body_cuts_the_client_connection(gw: GatewayUnderTest) -> None:
    # /drip sends headers at once and then chunks slowly; the overall deadline (0.5 s) expires mid-body
    url = f"{gw.internal}/hang-drip?chunks=1000&interval=0.1"
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_client_leaving_mid_body_is_not_an_upstream_failure(gw: GatewayUnderTest) -> None:
    errors = 'gateway_requests_total{listener="internal",method="GET",route="drip",status_class="5xx"}'
    ok = 'gateway_requests_total{listener="internal",method="GET",route="drip",status_class="2xx"}'
    aborted = 'gateway_responses_aborted_total{listener="internal"}'
    async with aiohttp.ClientSession() as s:
        before = [await metric_value(s, gw.admin, m) for m in (errors, ok, aborted)]
        url = URL(gw.internal)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(b"GET /drip?chunks=50&interval=0.02 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        writer.transport.abort()  # gone after the headers, while the body streams
        for _ in range(100):
            after = [await metric_value(s, gw.admin, m) for m in (errors, ok, aborted)]
            if after != before:
                break
            await asyncio.sleep(0.05)
    assert after == [before[0], before[1] + 1, before[2]]  # a 200 cut short by the client


async def test_rejected_bodies_are_counted(gw: GatewayUnderTest) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 50

    sample = 'gateway_request_body_rejected_total{listener="internal",reason="too_large"}'
    async with aiohttp.ClientSession() as s:
        before = await metric_value(s, gw.admin, sample)
        async with s.post(f"{gw.internal}/echo-small", data=chunks()) as resp:
            assert resp.status == 413
        assert await metric_value(s, gw.admin, sample) == before + 1


async def metric_value(s: aiohttp.ClientSession, admin: str, sample: str) -> float:
    """The value of one exact sample line on /metrics (0 when absent)."""
    async with s.get(f"{admin}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("raw", [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
])
async def test_malformed_http_gets_a_problem_json_4xx_not_a_500(gw: GatewayUnderTest, raw: bytes) -> None:
    host, port = gw.internal.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 500, head
    assert b"application/problem+json" in head
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["instance"].startswith("urn:request:")


async def test_admin_config_redacts_secrets(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        cfg = gateway_config(tmp_path, clusters={"mes": {"endpoints": [up.url]}}, routes=routes(),
                             operator_auth=OPERATOR_AUTH)
        cfg["api_keys"] = {"store": str(tmp_path / "keys.json"), "pepper": "pepper-value-do-not-show"}
        cfg["cache"] = {"backend": "memory", "redis_url": "redis://:hunter2-redis@127.0.0.1:1/3"}
        async with run_gateway(cfg, tmp_path, ready=False) as gw, aiohttp.ClientSession() as s, \
                s.get(f"{gw.admin}/config", headers=OPERATOR_HEADERS) as resp:
            text = await resp.text()
    assert resp.status == 200
    assert "pepper-value-do-not-show" not in text
    assert "hunter2-redis" not in text
    assert "[REDACTED]" in text
