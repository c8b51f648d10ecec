"""MES pricing: real geometry on known models, bad uploads, order pricing, in-progress tracking."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from legacy_sim.mes import build_mes_app
from legacy_sim.pricing.samples import box_stl_ascii, box_stl_binary, flat_stl_binary
from tests.integration.legacy_sim.sim_support import ORDER, mes_config

STL = {"Content-Type": "model/stl"}


@pytest.mark.parametrize("model", [box_stl_binary(), box_stl_ascii()], ids=["binary", "ascii"])
async def test_price_of_a_10mm_cube(mes_client: TestClient, model: bytes) -> None:
    resp = await mes_client.post("/price?material=PLA", data=model, headers=STL)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["volume_mm3"] == pytest.approx(1000.0)
    assert body["surface_area_mm2"] == pytest.approx(600.0)
    assert body["bbox_mm"] == pytest.approx([10.0, 10.0, 10.0])
    assert body["triangles"] == 12
    assert body["material"] == "PLA"
    assert body["price_eur"] > 0
    assert len(body["model_sha256"]) == 64
    assert body["duration_ms"] >= 0


async def test_denser_material_costs_more(mes_client: TestClient) -> None:
    prices = {}
    for material in ("PLA", "TITANIUM"):
        resp = await mes_client.post(f"/price?material={material}", data=box_stl_binary(), headers=STL)
        prices[material] = (await resp.json())["price_eur"]
    assert prices["TITANIUM"] > prices["PLA"]


@pytest.mark.parametrize("model", [flat_stl_binary(), b"", b"solid x\nfacet nonsense\n", b"\x00" * 90,
                                   box_stl_binary()[:-7]],
                         ids=["flat", "empty", "bad-ascii", "zero-triangles", "truncated"])
async def test_unusable_models_are_422(mes_client: TestClient, model: bytes) -> None:
    resp = await mes_client.post("/price?material=PLA", data=model, headers=STL)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize("query", ["", "?material=GOLD"])
async def test_missing_or_unknown_material_is_422(mes_client: TestClient, query: str) -> None:
    resp = await mes_client.post(f"/price{query}", data=box_stl_binary(), headers=STL)
    assert resp.status == 422
    assert (await resp.json())["invalid_params"][0]["name"] == "material"


async def test_non_stl_content_type_is_415(mes_client: TestClient) -> None:
    resp = await mes_client.post("/price?material=PLA", json={"a": 1})
    assert resp.status == 415


async def test_model_over_the_limit_is_413(pg_dsn: str) -> None:
    app = build_mes_app(mes_config(pg_dsn, max_model_bytes=1000))
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/price?material=PLA", data=box_stl_ascii(), headers=STL)
        assert resp.status == 413


async def test_pricing_an_order_stores_price_and_moves_it_on(mes_client: TestClient,
                                                             db: asyncpg.Connection) -> None:
    order = await (await mes_client.post("/orders", json=ORDER)).json()
    resp = await mes_client.post(f"/orders/{order['id']}/price", data=box_stl_binary(), headers=STL)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "PRICE_CALCULATED"
    assert body["price_eur"] == body["pricing"]["price_eur"]
    assert body["model_sha256"] == body["pricing"]["model_sha256"]
    row = await db.fetchrow("SELECT order_id, outcome, finished_at FROM price_calculations")
    assert (row["order_id"], row["outcome"]) == (order["id"], "success")
    again = await mes_client.post(f"/orders/{order['id']}/price", data=box_stl_binary(), headers=STL)
    assert again.status == 409


async def test_running_calculations_are_visible_in_process_and_database(pg_dsn: str) -> None:
    app = build_mes_app(mes_config(pg_dsn, price_delay_s=0.6))
    async with TestClient(TestServer(app)) as client:
        request = asyncio.create_task(client.post("/price?material=ABS", data=box_stl_binary(), headers=STL))
        async with asyncio.timeout(5):
            while (await (await client.get("/")).json())["pricing"]["in_progress"] != 1:
                await asyncio.sleep(0.02)
        conn = await asyncpg.connect(pg_dsn)
        try:
            running = "SELECT count(*) FROM price_calculations WHERE finished_at IS NULL"
            assert await conn.fetchval(running) == 1
            assert (await request).status == 200
            assert await conn.fetchval(running) == 0
        finally:
            await conn.close()
        assert (await (await client.get("/")).json())["pricing"]["completed"] == 1


async def test_calculations_left_open_by_a_crash_are_closed_at_restart(pg_dsn: str) -> None:
    async with TestClient(TestServer(build_mes_app(mes_config(pg_dsn)))):
        conn = await asyncpg.connect(pg_dsn)
        await conn.execute("INSERT INTO price_calculations (instance_id, model_sha256, material) "
                           "VALUES ('mes-test', 'x', 'PLA'), ('other', 'y', 'PLA')")
    try:
        async with TestClient(TestServer(build_mes_app(mes_config(pg_dsn)))):
            query = "SELECT instance_id FROM price_calculations WHERE finished_at IS NULL"
            open_rows = await conn.fetch(query)
            assert [r["instance_id"] for r in open_rows] == ["other"]
    finally:
        await conn.close()
