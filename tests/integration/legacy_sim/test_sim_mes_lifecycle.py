"""MES status changes: the happy path, every kind of illegal transition, row locking."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from contracts.lifecycle import FORWARD_PATH
from tests.integration.legacy_sim.sim_support import ORDER

PATH = [s.value for s in FORWARD_PATH]


async def new_order(client: TestClient) -> int:
    resp = await client.post("/orders", json=ORDER)
    return int((await resp.json())["id"])


async def move(client: TestClient, order_id: int, status: str):
    return await client.post(f"/orders/{order_id}/status", json={"status": status})


async def advance(client: TestClient, order_id: int, to: str) -> None:
    for status in PATH[1:PATH.index(to) + 1]:
        assert (await move(client, order_id, status)).status == 200


async def test_happy_path_reaches_closed_with_full_history(mes_client: TestClient,
                                                           db: asyncpg.Connection) -> None:
    order_id = await new_order(mes_client)
    for status in PATH[1:]:
        resp = await move(mes_client, order_id, status)
        assert resp.status == 200
        assert (await resp.json())["status"] == status
    history = await db.fetch("SELECT old_status, new_status FROM order_status_history WHERE order_id = $1 "
                             "ORDER BY id", order_id)
    expected = list(zip([None, *PATH], PATH, strict=False))
    assert [(r["old_status"], r["new_status"]) for r in history] == expected


@pytest.mark.parametrize(("start", "target", "why"), [
    ("SUBMITTED", "MANUFACTURING_APPROVED", "allowed from"),        # skipping a step
    ("MANUFACTURING_STARTED", "PRICE_CALCULATED", "allowed from"),  # going backwards
    ("PRICE_CALCULATED", "PRICE_CALCULATED", "already"),            # same status
    ("SHIPPED", "CANCELLED", "only before SHIPPED"),                # cancel too late
    ("CLOSED", "SHIPPED", "terminal"),                              # leaving an archived order
    ("SUBMITTED", "SUBMITTED", "already"),
])
async def test_illegal_transitions_are_409_saying_from_and_to(mes_client: TestClient, start: str, target: str,
                                                              why: str) -> None:
    order_id = await new_order(mes_client)
    await advance(mes_client, order_id, start)
    resp = await move(mes_client, order_id, target)
    body = await resp.json()
    assert resp.status == 409
    assert f"{start} -> {target}" in body["detail"]
    assert why in body["detail"]
    assert (body["current_status"], body["requested_status"]) == (start, target)


async def test_cancelled_is_terminal(mes_client: TestClient) -> None:
    order_id = await new_order(mes_client)
    assert (await move(mes_client, order_id, "CANCELLED")).status == 200
    assert (await move(mes_client, order_id, "PRICE_CALCULATED")).status == 409


@pytest.mark.parametrize("body", [{}, {"status": "DONE"}, {"status": 7},
                                  {"status": "SHIPPED", "price_eur": 10},
                                  {"status": "PRICE_CALCULATED", "price_eur": "ten"}])
async def test_bad_status_bodies_are_422(mes_client: TestClient, body: dict) -> None:
    order_id = await new_order(mes_client)
    assert (await mes_client.post(f"/orders/{order_id}/status", json=body)).status == 422


async def test_status_change_can_store_a_price(mes_client: TestClient) -> None:
    order_id = await new_order(mes_client)
    resp = await mes_client.post(f"/orders/{order_id}/status", json={"status": "PRICE_CALCULATED",
                                                                     "price_eur": 12.345})
    assert (await resp.json())["price_eur"] == 12.35


async def test_status_change_of_unknown_order_is_404(mes_client: TestClient) -> None:
    assert (await move(mes_client, 424242, "CANCELLED")).status == 404


async def test_concurrent_changes_of_one_order_serialize(mes_client: TestClient,
                                                         db: asyncpg.Connection) -> None:
    order_id = await new_order(mes_client)
    responses = await asyncio.gather(*(move(mes_client, order_id, "PRICE_CALCULATED") for _ in range(10)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 9
    history = await db.fetchval("SELECT count(*) FROM order_status_history WHERE order_id = $1", order_id)
    assert history == 2  # creation + the one change that won the row lock
