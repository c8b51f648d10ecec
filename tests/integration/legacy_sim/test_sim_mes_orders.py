"""MES order API: creation, reads, listing and input validation."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from legacy_sim.mes import build_mes_app
from tests.integration.legacy_sim.sim_support import ORDER, mes_config

PROBLEM = "application/problem+json"


async def create(client: TestClient, **fields: object) -> dict:
    resp = await client.post("/orders", json={**ORDER, **fields})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_create_returns_201_location_and_submitted_order(mes_client: TestClient) -> None:
    resp = await mes_client.post("/orders", json={**ORDER, "partner_id": "p-7"})
    body = await resp.json()
    assert resp.status == 201
    assert resp.headers["Location"] == f"/orders/{body['id']}"
    assert body["status"] == "SUBMITTED"
    assert body["source"] == "b2b"
    assert body["partner_id"] == "p-7"
    assert body["price_eur"] is None


async def test_create_with_same_external_ref_returns_existing_order_with_200(mes_client: TestClient) -> None:
    first = await create(mes_client, external_ref="PO-1")
    resp = await mes_client.post("/orders", json={**ORDER, "external_ref": "PO-1"})
    assert resp.status == 200
    assert (await resp.json())["id"] == first["id"]


async def test_create_writes_a_history_row(mes_client: TestClient, db: asyncpg.Connection) -> None:
    order = await create(mes_client)
    rows = await db.fetch("SELECT old_status, new_status FROM order_status_history WHERE order_id = $1",
                          order["id"])
    assert [tuple(r) for r in rows] == [(None, "SUBMITTED")]


async def test_get_returns_the_order_and_404_for_unknown_ids(mes_client: TestClient) -> None:
    order = await create(mes_client)
    assert (await (await mes_client.get(f"/orders/{order['id']}")).json()) == order
    for bad in ("999999", "abc", "99999999999999999999999", "-1"):
        resp = await mes_client.get(f"/orders/{bad}")
        assert resp.status == 404
        assert resp.content_type == PROBLEM


async def test_list_filters_by_status_newest_first_with_total(mes_client: TestClient,
                                                              db: asyncpg.Connection) -> None:
    ids = [(await create(mes_client))["id"] for _ in range(7)]
    await db.execute("UPDATE orders SET status = 'CANCELLED' WHERE id = $1", ids[0])
    resp = await mes_client.get("/orders", params={"status": "submitted", "page": "1", "per_page": "4"})
    body = await resp.json()
    assert resp.status == 200
    assert body["total"] == 6
    assert [o["id"] for o in body["items"]] == ids[:0:-1][:4]
    page2 = await (await mes_client.get("/orders?status=SUBMITTED&page=2&per_page=4")).json()
    assert [o["id"] for o in page2["items"]] == ids[:0:-1][4:]
    sliced = await (await mes_client.get("/orders?offset=5&limit=10")).json()
    assert [o["id"] for o in sliced["items"]] == [ids[1], ids[0]]
    assert (sliced["total"], sliced["page"], sliced["per_page"]) == (7, 1, 10)


@pytest.mark.parametrize("query", ["status=NOPE", "per_page=501", "per_page=0", "page=0", "page=x",
                                   "limit=1000", "offset=-1", "page=1&limit=5"])
async def test_bad_list_parameters_are_422_naming_the_parameter(mes_client: TestClient, query: str) -> None:
    resp = await mes_client.get(f"/orders?{query}")
    body = await resp.json()
    assert resp.status == 422
    assert resp.content_type == PROBLEM
    assert body["invalid_params"][0]["name"] in query


async def test_malformed_json_is_400(mes_client: TestClient) -> None:
    resp = await mes_client.post("/orders", data=b'{"customer": ',
                                 headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["status"] == 400


@pytest.mark.parametrize(("patch", "field"), [
    ({"customer": None}, "customer"), ({"quantity": "3"}, "quantity"), ({"quantity": True}, "quantity"),
    ({"quantity": 0}, "quantity"), ({"material": "GOLD"}, "material"), ({"model_name": 5}, "model_name"),
    ({"model_sha256": "xyz"}, "model_sha256")])
async def test_wrong_or_missing_fields_are_422_naming_the_field(mes_client: TestClient, patch: dict,
                                                                field: str) -> None:
    resp = await mes_client.post("/orders", json={**ORDER, **patch})
    body = await resp.json()
    assert resp.status == 422
    assert body["invalid_params"] == [{"name": field, "reason": body["invalid_params"][0]["reason"]}]
    assert field in body["detail"]


async def test_non_object_json_is_422(mes_client: TestClient) -> None:
    assert (await mes_client.post("/orders", json=[1, 2])).status == 422


async def test_oversized_json_body_is_413(mes_client: TestClient) -> None:
    resp = await mes_client.post("/orders", json={**ORDER, "customer": "x" * 100_000})
    assert resp.status == 413
    assert resp.content_type == PROBLEM


async def test_unknown_route_and_method_are_problem_json(mes_client: TestClient) -> None:
    assert (await mes_client.get("/nope")).content_type == PROBLEM
    resp = await mes_client.delete("/orders")
    assert resp.status == 405
    assert resp.content_type == PROBLEM
    assert "GET" in resp.headers["Allow"]


async def test_info_and_healthz(mes_client: TestClient) -> None:
    assert (await (await mes_client.get("/healthz")).json())["status"] == "ok"
    assert (await (await mes_client.get("/")).json())["instance_id"] == "mes-test"


async def test_database_outage_is_503_problem_not_500(pg_dsn: str, pg_server) -> None:
    name = pg_dsn.rsplit("/", 1)[1]
    app = build_mes_app(mes_config(pg_dsn, health_timeout_s=0.5))
    async with TestClient(TestServer(app)) as client:
        admin = await asyncpg.connect(pg_server.dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                                name)
            health = await client.get("/healthz")
            listing = await client.get("/orders")
            assert health.status == 503
            assert listing.status == 503
            assert listing.content_type == PROBLEM
            assert "Retry-After" in listing.headers
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
