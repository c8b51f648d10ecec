"""The partner order API on the real gateway + real MES + PostgreSQL: a partner sees only its own
orders, whatever it sends; bad input is our problem+json; internal fields never leak."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.partner_api.orders import ORDER_FIELDS
from tests.integration.gateway.partner_api_support import ALL_SCOPES, NEW_ORDER, partner_api_config
from tests.support.gateway import GatewayUnderTest, run_gateway
from tests.support.legacy import mes_processes
from tests.support.partner_edge import make_keys

pytestmark = pytest.mark.timeout(90)
PROBLEMS = "https://mes-edge.dev/problems/"


@pytest.fixture
async def edge(tmp_path: Path, pg_dsn: str) -> AsyncIterator[tuple[GatewayUnderTest, dict[str, str]]]:
    store, (acme, globex, reader) = make_keys(tmp_path, ("acme", "gold", ALL_SCOPES),
                                              ("globex", "gold", ALL_SCOPES),
                                              ("acme", "gold", ("orders:read",)))
    with mes_processes(pg_dsn, tmp_path, count=1) as mes:
        async with run_gateway(partner_api_config(tmp_path, [u for u, _ in mes], store), tmp_path) as gw:
            yield gw, {"acme": acme, "globex": globex, "acme-reader": reader}


def _as(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def _create(s: aiohttp.ClientSession, gw: GatewayUnderTest, key: str, **extra: Any) -> dict[str, Any]:
    async with s.post(f"{gw.external}/partner/v1/orders", json={**NEW_ORDER, **extra}, headers=_as(key)) as r:
        assert r.status == 201, await r.text()
        order: dict[str, Any] = await r.json()
        assert r.headers["Location"] == f"/partner/v1/orders/{order['id']}"
        return order


async def _problem(r: aiohttp.ClientResponse, status: int, slug: str) -> dict[str, Any]:
    assert r.status == status, await r.text()
    assert r.content_type == "application/problem+json"
    body: dict[str, Any] = await r.json()
    assert body["type"] == PROBLEMS + slug
    assert body["instance"] == f"urn:request:{r.headers['X-Request-ID']}"
    return body


async def test_create_sets_the_callers_partner_id_and_hides_internal_fields(edge: Any) -> None:
    gw, keys = edge
    async with aiohttp.ClientSession() as s:
        order = await _create(s, gw, keys["acme"], partner_id="globex", source="crm", external_ref="CRM-1")
        assert order["partner_id"] == "acme"
        assert tuple(order) == ORDER_FIELDS  # no source, no external_ref
        async with s.get(f"{gw.internal}/orders/{order['id']}") as r:  # what the MES stored
            stored = await r.json()
        assert (stored["partner_id"], stored["source"], stored["external_ref"]) == ("acme", "b2b", None)


async def test_another_partners_order_is_the_same_404_as_an_unknown_id(edge: Any) -> None:
    gw, keys = edge
    async with aiohttp.ClientSession() as s:
        order = await _create(s, gw, keys["acme"])
        async with s.get(f"{gw.external}/partner/v1/orders/{order['id']}", headers=_as(keys["acme"])) as r:
            assert r.status == 200
            assert await r.json() == order
        answers = []
        for order_id in (order["id"], order["id"] + 1000):
            async with s.get(f"{gw.external}/partner/v1/orders/{order_id}", headers=_as(keys["globex"])) as r:
                body = await _problem(r, 404, "not-found")
                answers.append((body["title"], body["detail"].replace(str(order_id), "ID"), r.headers.keys()))
        assert answers[0] == answers[1]
        for path in (f"{order['id']}/status", "abc", "0", "99999999999999999999", f"{order['id']}/"):
            async with s.get(f"{gw.external}/partner/v1/orders/{path}", headers=_as(keys["acme"])) as r:
                await _problem(r, 404, "not-found")
        async with s.post(f"{gw.external}/partner/v1/orders/{order['id']}", json={},
                          headers=_as(keys["acme"])) as r:
            await _problem(r, 405, "method-not-allowed")


async def test_list_is_forced_to_the_caller_whatever_the_query(edge: Any) -> None:
    gw, keys = edge
    async with aiohttp.ClientSession() as s:
        mine = [(await _create(s, gw, keys["acme"]))["id"] for _ in range(3)]
        await _create(s, gw, keys["globex"])
        async with s.post(f"{gw.internal}/orders", json=NEW_ORDER) as r:  # no partner at all
            assert r.status == 201
        for query in ("", "?partner_id=globex", "?per_page=2&page=1&status=SUBMITTED",
                      "?partner_id=globex&partner_id=acme"):
            async with s.get(f"{gw.external}/partner/v1/orders{query}",
                             headers=_as(keys["acme-reader"])) as r:
                assert r.status == 200, await r.text()
                page = await r.json()
            assert set(page) == {"items", "page", "per_page", "total"}
            assert page["total"] == 3
            assert {o["id"] for o in page["items"]} <= set(mine)
            assert all(tuple(o) == ORDER_FIELDS and o["partner_id"] == "acme" for o in page["items"])
        async with s.get(f"{gw.external}/partner/v1/orders?per_page=2&page=2",
                         headers=_as(keys["acme"])) as r:
            assert [o["id"] for o in (await r.json())["items"]] == [mine[0]]


async def test_bad_list_queries_are_400_or_422(edge: Any) -> None:
    gw, keys = edge
    async with aiohttp.ClientSession() as s:
        url = f"{gw.external}/partner/v1/orders"
        for query, status, slug, param in (("?sort=id", 400, "bad-request", "sort"),
                                           ("?offset=5", 400, "bad-request", "offset"),
                                           ("?page=1&page=2", 400, "bad-request", "page"),
                                           ("?per_page=101", 422, "validation-failed", "per_page"),
                                           ("?page=0", 422, "validation-failed", "page"),
                                           ("?status=LOST", 422, "validation-failed", "status")):
            async with s.get(url + query, headers=_as(keys["acme"])) as r:
                body = await _problem(r, status, slug)
                assert body["invalid_params"][0]["name"] == param


async def test_bad_order_bodies_are_our_problems(edge: Any) -> None:
    gw, keys = edge
    url = f"{gw.external}/partner/v1/orders"
    json_ct = {**_as(keys["acme"]), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as s:
        for body, status, slug in ((b"{", 400, "bad-request"), (b"", 400, "bad-request"),
                                   (b"[1]", 422, "validation-failed"),
                                   (b'{"x": "' + b"a" * 20000 + b'"}', 413, "payload-too-large")):
            async with s.post(url, data=body, headers=json_ct) as r:
                await _problem(r, status, slug)
        async with s.post(url, data=b"customer=x", headers={
                **_as(keys["acme"]), "Content-Type": "application/x-www-form-urlencoded"}) as r:
            await _problem(r, 415, "unsupported-media-type")
        async with s.post(url, json={**NEW_ORDER, "quantity": 0}, headers=_as(keys["acme"])) as r:
            body = await _problem(r, 422, "validation-failed")  # refused at the edge by the document
            assert body["invalid_params"] == [{"name": "quantity", "in": "body", "pointer": "/quantity",
                                               "reason": "must be at least 1"}]
            assert "/orders" not in body["instance"]
        async with s.post(url, json=NEW_ORDER, headers=_as(keys["acme-reader"])) as r:
            await _problem(r, 403, "forbidden")
        async with s.get(url) as r:
            await _problem(r, 401, "unauthorized")


async def test_text_the_database_cannot_store_is_a_422_not_a_503(edge: Any) -> None:
    """Found by the fuzzer: a NUL in a string made PostgreSQL fail and the MES answer 503."""
    gw, keys = edge
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.external}/partner/v1/orders", json={**NEW_ORDER, "model_name": "a\u0000.stl"},
                          headers=_as(keys["acme"])) as r:
            body = await _problem(r, 422, "validation-failed")
            assert body["invalid_params"][0]["name"] == "model_name"
        async with s.post(f"{gw.external}/partner/v1/orders", json={**NEW_ORDER, "quantity": 3.0},
                          headers=_as(keys["acme"])) as r:
            assert r.status == 201  # JSON has one number type: 3.0 is the integer 3
            assert (await r.json())["quantity"] == 3
