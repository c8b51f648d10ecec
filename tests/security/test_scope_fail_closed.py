"""Partner scope fails closed: whatever the MES's framing (chunked, large, slow drip) or behaviour
(ignoring ``partner_id``), a partner gets its own orders projected, or a 502/504 problem — never
another partner's order and never an internal column."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.partner_api.orders import ORDER_FIELDS
from tests.security.edge_support import partner_edge, read_problem
from tests.security.hostile_mes import HostileMes, hostile_mes, order
from tests.support.gateway import GatewayUnderTest

pytestmark = pytest.mark.timeout(60)
Edge = tuple[GatewayUnderTest, dict[str, str], HostileMes]


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    async with hostile_mes() as mes, partner_edge(tmp_path, mes.url) as (gw, keys):
        yield gw, keys, mes


async def _get(gw: GatewayUnderTest, key: str, path: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with aiohttp.ClientSession() as s, \
            s.get(f"{gw.external}/partner/v1/orders{path}", headers={"X-API-Key": key}) as r:
        try:
            body = await r.read()
        except aiohttp.ClientPayloadError:  # a cut answer is acceptable; what arrived is checked
            body = b""
        return r, body


def _no_leak(body: bytes) -> None:
    for leak in (b"SECRET-REF", b"globex", b'"source"'):
        assert leak not in body


async def test_a_chunked_order_of_another_partner_is_the_404_of_an_unknown_id(edge: Edge) -> None:
    gw, keys, mes = edge
    mes.framing = "chunked"
    mes.orders[7] = order("globex", 7)
    r, body = await _get(gw, keys["acme"], "/7")
    _no_leak(body)
    assert r.status == 404


async def test_a_chunked_own_order_is_projected(edge: Edge) -> None:
    gw, keys, mes = edge
    mes.framing = "chunked"
    mes.orders[8] = order("acme", 8)
    r, body = await _get(gw, keys["acme"], "/8")
    assert r.status == 200
    _no_leak(body)
    assert tuple(await r.json()) == ORDER_FIELDS


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_500_kb_own_page_of_multibyte_text_is_read_whole_and_projected(edge: Edge, framing: str
                                                                               ) -> None:
    gw, keys, mes = edge
    mes.framing = framing
    name = "Ŝtütze-Ωmega-ÆØÅ-" * 200  # ~5 KB of multi-byte text per order: ~500 KB for 100 orders
    mes.list_items = [order("acme", i, text=name) for i in range(1, 101)]
    r, body = await _get(gw, keys["acme"], "?per_page=100")
    assert r.status == 200, body[:300]
    assert len(body) > 400_000
    _no_leak(body)
    page: dict[str, Any] = await r.json()
    assert [tuple(i) for i in page["items"]] == [ORDER_FIELDS] * 100
    assert page["items"][0]["model_name"] == name


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_page_with_one_order_of_another_partner_is_refused(edge: Edge, framing: str) -> None:
    gw, keys, mes = edge
    mes.framing = framing
    mes.list_items = [order("acme", 1), order("globex", 2), order("acme", 3)]
    r, body = await _get(gw, keys["acme"], "")
    _no_leak(body)
    await read_problem(r, 502)
    async with aiohttp.ClientSession() as s, s.get(f"{gw.admin}/metrics") as m:
        text = await m.text()
    assert 'gateway_partner_scope_refusals_total{reason="foreign_item"} 1.0' in text


async def test_a_slow_drip_of_another_partners_order_never_reaches_the_partner(edge: Edge) -> None:
    gw, keys, mes = edge
    mes.framing = "drip"
    mes.orders[9] = order("globex", 9)
    mes.list_items = [order("globex", 10)]
    for path in ("/9", ""):
        r, body = await _get(gw, keys["acme"], path)
        _no_leak(body)
        await read_problem(r, 504)  # the cluster's overall timeout bounds the read


async def test_an_answer_above_the_read_cap_is_refused_not_streamed(edge: Edge) -> None:
    gw, keys, mes = edge
    mes.framing = "chunked"
    mes.list_items = [order("acme", i, text="x" * 50_000) for i in range(1, 101)]  # ~5 MB
    r, body = await _get(gw, keys["acme"], "?per_page=100")
    _no_leak(body)
    await read_problem(r, 502)


async def test_a_create_reaches_the_mes_as_exactly_post_orders_without_the_client_query(edge: Edge
                                                                                        ) -> None:
    gw, keys, mes = edge
    new = {"customer": "ACME", "material": "PLA", "quantity": 1, "model_name": "a.stl"}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.external}/partner/v1/orders?partner_id=globex&x=1", json=new,
                          headers={"X-API-Key": keys["acme"]}) as r:  # the document has no query here
            problem = await read_problem(r, 400)
        assert [p["name"] for p in problem["invalid_params"]] == ["partner_id", "x"]
        assert mes.requests == []
        async with s.post(f"{gw.external}/partner/v1/orders", json=new,
                          headers={"X-API-Key": keys["acme"]}) as r:
            assert r.status == 201, await r.text()
            _no_leak(await r.read())
    method, path_qs, _, body = mes.requests[-1]
    assert (method, path_qs) == ("POST", "/orders")
    assert b'"partner_id":"acme"' in body


@pytest.mark.parametrize(("status", "slug"), [(409, "conflict"), (502, "upstream-error")])
async def test_an_upstream_error_typed_like_ours_is_reissued_not_relayed(edge: Edge, status: int,
                                                                        slug: str) -> None:
    """A sidecar builds its errors with our type URIs, and the MES controls its bodies: neither is
    trusted — the partner gets our problem with at most a short detail, no MES headers."""
    gw, keys, mes = edge
    foreign = {**order("globex", 5), "type": f"https://mes-edge.dev/problems/{slug}", "status": status,
               "title": "x", "detail": "cannot connect to the legacy instance 127.0.0.1:47993",
               "instance": "urn:request:theirs"}
    mes.error = (status, "application/problem+json", orjson.dumps(foreign))
    for path in ("/5", "", "?page=2"):
        async with aiohttp.ClientSession() as s, s.get(f"{gw.external}/partner/v1/orders{path}",
                                                        headers={"X-API-Key": keys["acme"]}) as r:
            problem = await read_problem(r, status)
            _no_leak(await r.read())
            assert "X-Internal-Host" not in r.headers
        assert set(problem) <= {"type", "title", "status", "detail", "instance", "request_id"}
        if status >= 500:
            assert "127.0.0.1" not in problem["detail"]


async def test_a_read_with_a_body_is_refused_and_nothing_reaches_the_mes(edge: Edge) -> None:
    gw, keys, mes = edge
    mes.orders[1] = order("acme", 1)
    for path in ("/1", ""):
        async with aiohttp.ClientSession() as s, s.get(
                f"{gw.external}/partner/v1/orders{path}", data=b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
                headers={"X-API-Key": keys["acme"]}) as r:
            await read_problem(r, 400)
    assert mes.requests == []
