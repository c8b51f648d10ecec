"""The cache filter through the real gateway, in front of a small fake MES orders API.

Hits, collapsing, conditional requests, stale-while-revalidate, stale-if-error, what is never
stored, invalidation by writes through the gateway and by admin purges, partner separation.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import REGISTRY

from tests.support.gateway import (
    OPERATOR_AUTH,
    OPERATOR_HEADERS,
    GatewayUnderTest,
    gateway_config,
    run_gateway,
)
from tests.support.partner_edge import api_keys_section, make_keys

LIST = {"status": None, "page": 1, "per_page": 50}


class FakeOrders:
    """``GET /orders[?status=]``, ``GET /orders/{id}``, ``POST /orders/{id}/status`` on 20 orders."""

    def __init__(self) -> None:
        self.orders = {i: {"id": i, "status": "SUBMITTED", "partner_id": f"p{i % 2}"} for i in range(1, 21)}
        self.hits: Counter[str] = Counter()
        self.delay = 0.0
        self.fail = False
        self.extra_headers: dict[str, str] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _list(self, request: web.Request) -> web.Response:
        self.hits["list"] += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            return web.json_response({"title": "down"}, status=503)
        status = request.query.get("status", "").upper()
        items = [o for o in reversed(self.orders.values()) if not status or o["status"] == status]
        return web.json_response({"items": items, "total": len(items)}, headers=self.extra_headers)

    async def _get(self, request: web.Request) -> web.Response:
        self.hits["get"] += 1
        return web.json_response(self.orders[int(request.match_info["id"])])

    async def _change(self, request: web.Request) -> web.Response:
        order = self.orders[int(request.match_info["id"])]
        order["status"] = (await request.json())["status"]
        return web.json_response(order)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def start(self) -> FakeOrders:
        app = web.Application()
        app.router.add_get("/orders", self._list)
        app.router.add_get("/orders/{id}", self._get)
        app.router.add_post("/orders/{id}/status", self._change)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def mes() -> AsyncIterator[FakeOrders]:
    fake = await FakeOrders().start()
    yield fake
    await fake.stop()


def _cfg(tmp_path: Path, mes: FakeOrders, policy: dict[str, Any], **top: Any) -> dict[str, Any]:
    routes = [{"name": "orders", "listener": "internal", "prefix": "/orders",
               "methods": ["GET", "HEAD", "POST"], "cluster": "mes", "cache": {"key_params": LIST, **policy}}]
    return gateway_config(tmp_path, clusters={"mes": {"endpoints": [mes.url], "retry": {"attempts": 0},
                                                      "health_check": {"path": "/healthz", "interval": 60}}},
                          routes=routes, **{"operator_auth": OPERATOR_AUTH, **top})


@pytest.fixture
async def gw(tmp_path: Path, mes: FakeOrders) -> AsyncIterator[GatewayUnderTest]:
    cfg = _cfg(tmp_path, mes, {"ttl": 30, "stale_if_error": 60})
    async with run_gateway(cfg, tmp_path) as gw:
        yield gw


async def get(s: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, CIMultiDict[str], bytes]:
    async with s.get(url, **kw) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


def requests_total(route: str, result: str) -> float:
    labels = {"route": route, "result": result}
    return REGISTRY.get_sample_value("gateway_cache_requests_total", labels) or 0.0


async def test_second_read_is_a_hit_with_age_and_strong_etag(gw: GatewayUnderTest, mes: FakeOrders) -> None:
    hits = requests_total("orders", "hit")
    async with aiohttp.ClientSession() as s:
        status1, h1, body1 = await get(s, f"{gw.internal}/orders?status=submitted&page=1")
        status2, h2, body2 = await get(s, f"{gw.internal}/orders?per_page=50&status=SUBMITTED")
    assert (status1, status2, body1 == body2) == (200, 200, True)
    assert h1["Cache-Status"] == "mes-edge; fwd=uri-miss; fwd-status=200; stored"
    assert h2["Cache-Status"].startswith("mes-edge; hit; ttl=")
    assert h1["ETag"] == h2["ETag"]
    assert h1["ETag"].startswith('"')
    assert "Age" in h2
    assert mes.hits["list"] == 1
    assert requests_total("orders", "hit") - hits == 1


async def test_if_none_match_gets_304_on_hits_and_on_misses(gw: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as s:
        _, h, _ = await get(s, f"{gw.internal}/orders")
        status, h304, body = await get(s, f"{gw.internal}/orders", headers={"If-None-Match": h["ETag"]})
        assert (status, body, h304["ETag"]) == (304, b"", h["ETag"])
        assert h304["Cache-Status"].startswith("mes-edge; hit")
        status, h304, _ = await get(s, f"{gw.internal}/orders/3", headers={"If-None-Match": "*"})
        assert status == 304
        assert "stored" in h304["Cache-Status"]


async def test_concurrent_misses_send_one_upstream_request(gw: GatewayUnderTest, mes: FakeOrders) -> None:
    mes.delay = 0.3
    async with aiohttp.ClientSession() as s:
        answers = await asyncio.gather(*(get(s, f"{gw.internal}/orders?status=SUBMITTED") for _ in range(20)))
    assert mes.hits["list"] == 1
    assert {a[0] for a in answers} == {200}
    assert len({a[2] for a in answers}) == 1
    assert sum("collapsed" in a[1]["Cache-Status"] for a in answers) == 19


async def test_a_write_through_the_gateway_invalidates_before_it_is_acknowledged(
        gw: GatewayUnderTest, mes: FakeOrders) -> None:
    async with aiohttp.ClientSession() as s:
        await get(s, f"{gw.internal}/orders?status=SUBMITTED")
        await get(s, f"{gw.internal}/orders/5")
        await get(s, f"{gw.internal}/orders?status=PRICE_CALCULATED")
        async with s.post(f"{gw.internal}/orders/5/status", json={"status": "PRICE_CALCULATED"}) as resp:
            assert resp.status == 200
        _, h_old, old = await get(s, f"{gw.internal}/orders?status=SUBMITTED")
        _, h_one, one = await get(s, f"{gw.internal}/orders/5")
        _, h_new, new = await get(s, f"{gw.internal}/orders?status=PRICE_CALCULATED")
    assert b'"id": 5,' not in old
    assert b"PRICE_CALCULATED" in one
    assert b'"id": 5,' in new
    assert all(h["Cache-Status"].startswith("mes-edge; fwd=miss;") for h in (h_old, h_one, h_new))


async def test_stale_if_error_serves_the_stored_list_while_the_mes_fails(
        tmp_path: Path, mes: FakeOrders) -> None:
    cfg = _cfg(tmp_path, mes, {"ttl": 0.2, "stale_if_error": 30})
    async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        _, _, fresh = await get(s, f"{gw.internal}/orders")
        await asyncio.sleep(0.3)
        mes.fail = True
        status, headers, body = await get(s, f"{gw.internal}/orders")
    assert (status, body) == (200, fresh)
    assert headers["Cache-Status"].startswith("mes-edge; fwd=stale; fwd-status=503; stale; ttl=")
    assert headers["Cache-Status"].endswith("detail=stale-if-error")


async def test_without_a_stored_answer_the_mes_error_goes_through(gw: GatewayUnderTest,
                                                                   mes: FakeOrders) -> None:
    mes.fail = True
    async with aiohttp.ClientSession() as s:
        status, headers, _ = await get(s, f"{gw.internal}/orders")
        mes.fail = False
        status2, headers2, _ = await get(s, f"{gw.internal}/orders")
    assert status == 503
    assert "detail=status" in headers["Cache-Status"]
    assert (status2, "fwd=uri-miss" in headers2["Cache-Status"]) == (200, True)


async def test_stale_while_revalidate_answers_at_once_and_refreshes_once(tmp_path: Path,
                                                                          mes: FakeOrders) -> None:
    cfg = _cfg(tmp_path, mes, {"ttl": 1, "stale_while_revalidate": 30})
    async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        await get(s, f"{gw.internal}/orders")
        await asyncio.sleep(1.1)
        mes.delay = 0.3
        answers = await asyncio.gather(*(get(s, f"{gw.internal}/orders") for _ in range(10)))
        assert all("hit; stale; ttl=" in a[1]["Cache-Status"] for a in answers)
        await asyncio.sleep(0.4)
        _, headers, _ = await get(s, f"{gw.internal}/orders")
    assert mes.hits["list"] == 2  # the first miss and ONE background refresh
    assert headers["Cache-Status"].startswith("mes-edge; hit; ttl=")


@pytest.mark.parametrize("header", [{"Set-Cookie": "session=1"}, {"Cache-Control": "private"},
                                    {"Cache-Control": "no-store"}])
async def test_private_answers_are_never_stored(tmp_path: Path, mes: FakeOrders,
                                                header: dict[str, str]) -> None:
    mes.extra_headers = header
    async with run_gateway(_cfg(tmp_path, mes, {"ttl": 30}), tmp_path) as gw, aiohttp.ClientSession() as s:
        for _ in range(3):
            _, headers, _ = await get(s, f"{gw.internal}/orders")
            assert "hit" not in headers["Cache-Status"]
    assert mes.hits["list"] == 3


async def test_client_no_cache_refetches_and_refreshes_the_entry(gw: GatewayUnderTest,
                                                                  mes: FakeOrders) -> None:
    async with aiohttp.ClientSession() as s:
        await get(s, f"{gw.internal}/orders/1")
        mes.orders[1]["status"] = "CANCELLED"  # changed behind the cache's back, no event
        _, h, body = await get(s, f"{gw.internal}/orders/1", headers={"Cache-Control": "no-cache"})
        _, h2, body2 = await get(s, f"{gw.internal}/orders/1")
    assert h["Cache-Status"] == "mes-edge; fwd=request; fwd-status=200; stored"
    assert b"CANCELLED" in body
    assert body2 == body
    assert h2["Cache-Status"].startswith("mes-edge; hit")


async def test_unknown_query_parameters_bypass_the_cache(gw: GatewayUnderTest, mes: FakeOrders) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            _, headers, _ = await get(s, f"{gw.internal}/orders?sort=oldest")
    assert headers["Cache-Status"] == "mes-edge; fwd=bypass; fwd-status=200; detail=unknown-param"
    assert mes.hits["list"] == 2


async def test_admin_purge_by_route_and_by_key(gw: GatewayUnderTest, mes: FakeOrders) -> None:
    async with aiohttp.ClientSession() as s:
        await get(s, f"{gw.internal}/orders?status=SUBMITTED")
        async with s.post(f"{gw.admin}/cache/purge", headers=OPERATOR_HEADERS,
                          params={"route": "orders"}) as resp:
            assert resp.status == 200
        _, h, _ = await get(s, f"{gw.internal}/orders?status=SUBMITTED")
        assert h["Cache-Status"].startswith("mes-edge; fwd=miss;")  # stored, but under older versions
        key = "/orders?status=submitted&page=1"  # normalised like the request: same entry
        async with s.post(f"{gw.admin}/cache/purge", headers=OPERATOR_HEADERS, params={"key": key}) as resp:
            assert (resp.status, (await resp.json())["deleted"]) == (200, True)
        _, h, _ = await get(s, f"{gw.internal}/orders?status=SUBMITTED")
        assert "fwd=uri-miss" in h["Cache-Status"]
        async with s.post(f"{gw.admin}/cache/purge", headers=OPERATOR_HEADERS,
                          params={"route": "nope"}) as resp:
            assert resp.status == 404


async def test_redis_down_bypasses_the_cache_and_never_fails(tmp_path: Path, mes: FakeOrders) -> None:
    from devstack.ports import free_port
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cfg = _cfg(tmp_path, mes, {"ttl": 30}, cache={"backend": "redis", "redis_url": dead,
                                                  "events_redis_url": None, "socket_timeout": 0.2})
    errors = REGISTRY.get_sample_value("gateway_cache_backend_errors_total", {"operation": "lookup"}) or 0.0
    async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        answers = [await get(s, f"{gw.internal}/orders") for _ in range(3)]
    assert {a[0] for a in answers} == {200}
    assert answers[0][1]["Cache-Status"].endswith("detail=backend-error")
    assert (REGISTRY.get_sample_value("gateway_cache_backend_errors_total", {"operation": "lookup"}) or 0) \
        - errors == 3


async def test_partners_only_ever_get_their_own_cached_orders(tmp_path: Path, mes: FakeOrders) -> None:
    store, (key_a, key_b) = make_keys(tmp_path, ("acme", "gold", ("orders:read",)),
                                      ("globex", "gold", ("orders:read",)))
    cfg = _cfg(tmp_path, mes, {"ttl": 30}, api_keys=api_keys_section(store))
    cfg["routes"].append({"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
                          "methods": ["GET"], "cluster": "mes", "rewrite_prefix": "/orders",
                          "auth": {"scopes": {"GET": ["orders:read"]}},
                          "cache": {"ttl": 30, "key_params": LIST}})
    async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        _, ha, _ = await get(s, f"{gw.external}/partner/v1/orders", headers={"X-API-Key": key_a})
        mes.orders[2]["status"] = "CANCELLED"  # what globex reads differs from acme's cached copy
        _, hb, body_b = await get(s, f"{gw.external}/partner/v1/orders", headers={"X-API-Key": key_b})
        _, ha2, _ = await get(s, f"{gw.external}/partner/v1/orders", headers={"X-API-Key": key_a})
    assert "fwd=uri-miss" in ha["Cache-Status"]
    assert "fwd=uri-miss" in hb["Cache-Status"]  # never acme's entry
    assert b"CANCELLED" in body_b
    assert ha2["Cache-Status"].startswith("mes-edge; hit")
