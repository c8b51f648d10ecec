"""What a request from outside can and cannot carry to the MES: one normalised path, an allow-list
of headers, a capped header block, bodies passed as sent (never decompressed), and errors that
name no internal address — all checked black-box on a `python -m gateway` process."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.security.edge_support import edge_config, partner_edge, raw_exchange, read_problem
from tests.security.hostile_mes import HostileMes, hostile_mes, order
from tests.support.gateway import OPERATOR_AUTH, OPERATOR_HEADERS, GatewayUnderTest, gateway_process
from tests.support.partner_edge import make_keys

pytestmark = pytest.mark.timeout(60)
Edge = tuple[GatewayUnderTest, dict[str, str], HostileMes]


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    async with hostile_mes() as mes, partner_edge(tmp_path, mes.url) as (gw, keys):
        mes.orders[1] = order("acme", 1)
        mes.list_items = [order("acme", 1)]
        yield gw, keys, mes


def _request(target: str, key: str = "", *, method: str = "GET", extra: str = "") -> bytes:
    auth = f"X-API-Key: {key}\r\n" if key else ""
    return f"{method} {target} HTTP/1.1\r\nHost: gw\r\n{auth}{extra}Connection: close\r\n\r\n".encode()


# ------------------------------------------------------------------ one normalised path

@pytest.mark.parametrize("target", [
    "http://gw/partner/v1/orders",                 # absolute-form
    "/partner/v1/orders/1%2F..%2F..%2Fadmin",      # encoded /
    "/partner/v1/orders/%2E%2E/x",                  # encoded .
    "/partner/v1/orders%3Fpartner_id=globex",       # encoded ?
    "/partner/v1/orders/../orders/1",               # dot-segments
    "/partner/v1/orders/./1",
    "/partner/v1/x/../orders",
    "/partner/v1/orders\\1",                        # backslash
])
async def test_the_external_listener_refuses_ambiguous_targets_before_the_mes(edge: Edge, target: str
                                                                              ) -> None:
    gw, keys, mes = edge
    status, headers, body = await raw_exchange(gw.external, _request(target, keys["acme"]))
    assert status == 400, body
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["request_id"] == headers["x-request-id"]
    assert mes.requests == []


async def test_the_internal_listener_takes_the_path_of_an_absolute_form_target(edge: Edge) -> None:
    gw, _, mes = edge
    status, _, body = await raw_exchange(gw.internal, _request("http://somewhere.example/orders/1"))
    assert status == 200, body
    assert mes.requests[-1][:2] == ("GET", "/orders/1")


@pytest.mark.parametrize(("target", "upstream"), [
    ("/orders/./1", "/orders/1"), ("/orders/x/../1", "/orders/1"), ("/orders/%31", "/orders/1"),
    ("/orders?status=SHIPPED%2F", "/orders?status=SHIPPED%2F"),
])
async def test_the_internal_listener_routes_and_forwards_the_same_normal_path(edge: Edge, target: str,
                                                                             upstream: str) -> None:
    gw, _, mes = edge
    status, _, body = await raw_exchange(gw.internal, _request(target))
    assert status == 200, body
    assert mes.requests[-1][1] == upstream


# ------------------------------------------------------------------ header allow-list

async def test_only_documented_headers_of_a_partner_reach_the_mes(edge: Edge) -> None:
    gw, keys, mes = edge
    hostile = {"X-Original-URL": "/admin", "X-Rewrite-URL": "/admin", "X-HTTP-Method-Override": "DELETE",
               "X-Forwarded-For": "10.0.0.1", "X-Forwarded-Host": "evil", "Forwarded": "for=10.0.0.1",
               "X-Real-IP": "10.0.0.1", "baggage": "role=admin", "tracestate": "x=1",
               "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
               "X-Partner-Id": "globex", "Cookie": "session=1", "X-Custom": "1"}
    async with aiohttp.ClientSession() as s, s.get(f"{gw.external}/partner/v1/orders/1",
                                                    headers={"X-API-Key": keys["acme"], **hostile}) as r:
        assert r.status == 200
    seen = {name.lower(): value for name, value in mes.requests[-1][2].items()}
    for name in hostile:
        if name.lower() in ("x-forwarded-for", "x-forwarded-host"):
            assert seen[name.lower()] in ("127.0.0.1", f"127.0.0.1:{gw.external.rsplit(':', 1)[1]}")
        else:
            assert name.lower() not in seen, name
    assert "x-api-key" not in seen


async def test_a_5xx_on_the_external_listener_names_no_endpoint_address_or_port(edge: Edge) -> None:
    gw, keys, mes = edge
    mes.reset = True
    port = mes.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as s, s.get(f"{gw.external}/partner/v1/orders/1",
                                                    headers={"X-API-Key": keys["acme"]}) as r:
        problem = await read_problem(r, 502)
    text = json.dumps(problem)
    for leak in ("127.0.0.1", port, "endpoint", "http://"):
        assert leak not in text


# ------------------------------------------------------------------ bodies are not decompressed

async def test_an_encoded_body_is_forwarded_exactly_as_sent(edge: Edge) -> None:
    gw, _, mes = edge
    body = gzip.compress(b'{"customer": "ACME", "material": "PLA", "quantity": 1}')
    async with aiohttp.ClientSession(auto_decompress=False) as s, s.post(
            f"{gw.internal}/orders", data=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}) as r:
        assert r.status in (200, 201, 400, 422), await r.text()
    _, _, headers, received = mes.requests[-1]
    assert headers["Content-Encoding"] == "gzip"
    assert received == body


async def test_an_encoded_body_on_a_route_the_gateway_reads_is_415(edge: Edge) -> None:
    gw, keys, mes = edge
    body = gzip.compress(b'{"customer": "ACME", "material": "PLA", "quantity": 1, "model_name": "a.stl"}')
    async with aiohttp.ClientSession() as s, s.post(
            f"{gw.external}/partner/v1/orders", data=body,
            headers={"X-API-Key": keys["acme"], "Content-Encoding": "gzip",
                     "Content-Type": "application/json"}) as r:
        await read_problem(r, 415)
        assert r.headers["Accept-Encoding"] == "identity"
    assert mes.requests == []


# ------------------------------------------------------------------ header block cap

@pytest.mark.parametrize(("count", "size"), [(120, 1000), (30, 2000), (101, 10), (1, 9000)])
async def test_a_header_block_above_the_limit_is_431_and_never_forwarded(edge: Edge, count: int,
                                                                         size: int) -> None:
    gw, keys, mes = edge
    extra = "".join(f"X-Pad-{i}: {'a' * size}\r\n" for i in range(count))
    status, headers, body = await raw_exchange(gw.external, _request("/partner/v1/orders/1", keys["acme"],
                                                                     extra=extra))
    assert status == 431, body[:200]
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["request_id"]
    assert mes.requests == []


async def test_a_header_block_under_the_limit_passes(edge: Edge) -> None:
    gw, keys, _ = edge
    extra = "".join(f"X-Pad-{i}: {'a' * 500}\r\n" for i in range(40))  # ~21 KB, 40 fields
    status, _, body = await raw_exchange(gw.external, _request("/partner/v1/orders/1", keys["acme"],
                                                               extra=extra))
    assert status == 200, body[:200]


# ------------------------------------------------------------------ protocol errors and their logs

async def test_a_flood_of_malformed_requests_writes_a_few_warning_lines_and_no_traceback(
        edge: Edge, tmp_path: Path) -> None:
    gw, _, _ = edge
    for _ in range(40):
        malformed = b"GET /x HTTP/1.1\r\nHost: gw\r\nBad Header\r\n\r\n"
        status, headers, _ = await raw_exchange(gw.external, malformed)
        assert status == 400
        assert headers["content-type"] == "application/problem+json"
    async with aiohttp.ClientSession() as s, s.get(f"{gw.admin}/metrics") as r:
        metrics = await r.text()
    assert 'gateway_protocol_errors_total{listener="external",status="400"} 40.0' in metrics
    assert 'gateway_protocol_errors_total{listener="internal",status="431"} 0.0' in metrics
    for name in ("gateway.log", "stdout.log"):  # the app log file, and what the process printed
        log = (tmp_path / name).read_text()
        assert "Traceback" not in log
        lines = [line for line in log.splitlines() if "protocol-error" in line]
        assert len(lines) <= 6, name  # 5 lines per 10 s, then one summary line
        assert all(json.loads(line)["log.level"] == "warning" for line in lines)


# ------------------------------------------------------------------ error consistency

async def test_gateway_made_errors_carry_the_server_header_of_proxied_answers(edge: Edge) -> None:
    gw, _, _ = edge
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.internal}/orders/1") as r:
            proxied = r.headers["Server"]
        async with s.get(f"{gw.internal}/nowhere") as r:
            await read_problem(r, 404)
            assert r.headers["Server"] == proxied == "mes-edge"


async def test_a_405_names_the_allowed_methods(edge: Edge) -> None:
    gw, _, _ = edge
    async with aiohttp.ClientSession() as s, s.delete(f"{gw.internal}/orders/1") as r:
        await read_problem(r, 405)
        assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize(("ctype", "body"), [
    ("text/html", b"<h1>500 Internal Server Error</h1><p>at /opt/mes/handler.py</p>"),
    ("application/json", b'{"error": "no such order"}'),
    ("application/problem+json", b'{"type": "about:blank", "title": "Not Found", "status": 404}'),
])
async def test_every_upstream_error_carries_the_request_id(edge: Edge, ctype: str, body: bytes) -> None:
    gw, _, mes = edge
    mes.error = (404 if "problem" in ctype else 500, ctype, body)
    async with aiohttp.ClientSession() as s, s.get(f"{gw.internal}/orders/1") as r:
        assert (r.status, r.content_type) == (mes.error[0], "application/problem+json")
        problem = await r.json(content_type=None)
    assert problem["request_id"] == r.headers["X-Request-ID"]
    assert problem["instance"] == f"urn:request:{r.headers['X-Request-ID']}"
    if "html" in ctype:  # operators see the MES's own words (partners never: see the scope filter)
        assert "/opt/mes" in problem["detail"]


async def test_head_on_a_cached_get_route_is_answered_from_the_cache(tmp_path: Path) -> None:
    async with hostile_mes() as mes:
        mes.orders[1] = order("acme", 1)
        store, _ = make_keys(tmp_path)
        cfg = edge_config(tmp_path, mes.url, store, cache={"backend": "memory"})
        cfg["routes"][1]["cache"] = {"ttl": 30, "key_params": {"status": None, "page": 1, "per_page": 50}}
        async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:  # GET, POST only
            async with s.get(f"{gw.internal}/orders/1") as r:
                assert r.status == 200
                body = await r.read()
            async with s.head(f"{gw.internal}/orders/1") as r:
                assert r.status == 200
                assert r.headers["Cache-Status"].startswith("mes-edge; hit")
                assert int(r.headers["Content-Length"]) == len(body)
    assert [m for m, *_ in mes.requests] == ["GET"]


async def test_a_client_named_connection_token_cannot_drop_the_gateways_own_headers(edge: Edge) -> None:
    gw, keys, mes = edge
    async with aiohttp.ClientSession() as s, s.post(
            f"{gw.external}/partner/v1/orders",
            json={"customer": "A", "material": "PLA", "quantity": 1, "model_name": "a.stl"},
            headers={"X-API-Key": keys["acme"], "Connection": "content-type, x-request-id"}) as r:
        assert r.status == 201, await r.text()
    headers = mes.requests[-1][2]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-ID"] == r.headers["X-Request-ID"]


async def test_a_host_header_that_is_not_a_host_is_not_passed_on_as_x_forwarded_host(edge: Edge) -> None:
    gw, keys, mes = edge
    status, _, _ = await raw_exchange(gw.external, _request("/partner/v1/orders/1", keys["acme"]).replace(
        b"Host: gw", b"Host: evil.example:1@internal"))
    assert status == 200
    assert "X-Forwarded-Host" not in mes.requests[-1][2]


async def test_an_api_key_with_a_non_utf8_byte_is_a_401_not_a_500(edge: Edge, tmp_path: Path) -> None:
    gw, keys, _ = edge
    key_id = keys["acme"].split("_")[1]
    bad = f"X-API-Key: mes_{key_id}_".encode() + b"B" * 40 + b"\xfe\r\n"
    for _ in range(3):
        request = b"GET /partner/v1/orders/1 HTTP/1.1\r\nHost: gw\r\n" + bad + b"Connection: close\r\n\r\n"
        status, headers, _ = await raw_exchange(gw.external, request)
        assert status == 401
        assert headers["content-type"] == "application/problem+json"
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


async def test_a_too_long_request_line_is_414(edge: Edge) -> None:
    gw, _, _ = edge
    status, headers, _ = await raw_exchange(gw.external, _request("/partner/v1/orders/" + "1" * 9000))
    assert status == 414
    assert headers["content-type"] == "application/problem+json"


async def test_an_operators_token_is_never_forwarded_to_the_mes(tmp_path: Path) -> None:
    async with hostile_mes() as mes:
        mes.orders[1] = order("acme", 1)
        store, _ = make_keys(tmp_path)
        cfg = edge_config(tmp_path, mes.url, store, operator_auth=OPERATOR_AUTH)
        cfg["listeners"]["internal"]["host"] = "0.0.0.0"  # beyond loopback: the token is required
        async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s, \
                s.get(f"{gw.internal}/orders/1", headers={**OPERATOR_HEADERS, "Cookie": "a=1"}) as r:
            assert r.status == 200
    assert "Authorization" not in mes.requests[-1][2]
