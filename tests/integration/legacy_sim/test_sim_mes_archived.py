"""The MES's answers about archived orders (CLOSED/CANCELLED long ago). Run on the legacy schema and,
by tests/integration/mesdb/test_mesdb_legacy_suite.py, on the schema the database kit migrated, where
those orders live in ``orders_archive``: the answers must be the same."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from contracts.lifecycle import FORWARD_PATH, OrderStatus
from telemetry.journey_db import HISTORY
from tests.integration.legacy_sim.sim_support import ORDER
from tests.support import mesdb_schema

PATH = [s.value for s in FORWARD_PATH]


async def _order(client: TestClient[Any, Any], path: list[str], **fields: object) -> int:
    resp = await client.post("/orders", json={**ORDER, **fields})
    order_id = int((await resp.json())["id"])
    for status in path:
        assert (await client.post(f"/orders/{order_id}/status", json={"status": status})).status == 200
    return order_id


async def _answers(
    client: TestClient[Any, Any], db: asyncpg.Connection, ids: dict[str, int]
) -> dict[str, Any]:
    """Everything the test compares: single reads, histories, lists and their counts."""
    found: dict[str, Any] = {}
    for name, order_id in ids.items():
        resp = await client.get(f"/orders/{order_id}")
        found[f"get {name}"] = (resp.status, await resp.json())
        found[f"history {name}"] = [tuple(r) for r in await db.fetch(HISTORY, order_id)]
    for params in ({"status": "CLOSED"}, {"status": "CANCELLED"}, {}, {"status": "SUBMITTED"}):
        resp = await client.get("/orders", params=params)
        found[f"list {params}"] = (resp.status, await resp.json())
    return found


@pytest.fixture
async def archived(mes_client: TestClient[Any, Any], db: asyncpg.Connection, pg_dsn: str) -> dict[str, Any]:
    """A closed, a cancelled (both 40 days ago: due for the archive) and an active order; the MES's
    answers about them before any archiver ran, then the archiver's pass on the migrated schema."""
    ids = {
        "closed": await _order(mes_client, PATH[1:], source="crm", external_ref="PO-ARCHIVED"),
        "cancelled": await _order(mes_client, ["CANCELLED"]),
        "active": await _order(mes_client, []),
    }
    await db.execute(
        "UPDATE orders SET status_changed_at = now() - interval '40 days' WHERE id = ANY($1)",
        [ids["closed"], ids["cancelled"]],
    )
    before = await _answers(mes_client, db, ids)
    moved = mesdb_schema.archive_due(pg_dsn)
    in_archive = await db.fetchval("SELECT count(*) FROM ONLY orders WHERE id = ANY($1)", list(ids.values()))
    if mesdb_schema.wanted():  # the two really moved out of the hot table, the active one stayed
        assert (moved, in_archive) == (2, 1)
    else:
        assert (moved, in_archive) == (0, 3)
    return {"ids": ids, "before": before}


async def test_archived_orders_read_listed_and_counted_as_before(
    mes_client: TestClient[Any, Any], db: asyncpg.Connection, archived: dict[str, Any]
) -> None:
    after = await _answers(mes_client, db, archived["ids"])
    assert after == archived["before"]
    assert after["get closed"][1]["status"] == "CLOSED"
    assert [h[2] for h in after["history closed"]] == PATH  # its whole history, SUBMITTED to CLOSED
    closed_list = after["list {'status': 'CLOSED'}"][1]
    assert ([o["id"] for o in closed_list["items"]], closed_list["total"]) == ([archived["ids"]["closed"]], 1)
    assert after["list {}"][1]["total"] == 3


async def test_no_status_change_of_an_archived_order_is_allowed(
    mes_client: TestClient[Any, Any], db: asyncpg.Connection, archived: dict[str, Any]
) -> None:
    """CLOSED and CANCELLED are terminal (contracts.lifecycle): every change is a 409, nothing written."""
    for target in (s.value for s in OrderStatus):
        for name in ("closed", "cancelled"):
            order_id = archived["ids"][name]
            resp = await mes_client.post(f"/orders/{order_id}/status", json={"status": target})
            body = await resp.json()
            assert resp.status == 409, body
            assert (body["current_status"], body["requested_status"]) == (name.upper(), target)
    assert await _answers(mes_client, db, archived["ids"]) == archived["before"]


async def test_a_crm_redelivery_of_an_archived_order_answers_that_order(
    mes_client: TestClient[Any, Any], archived: dict[str, Any]
) -> None:
    resp = await mes_client.post("/orders", json={**ORDER, "source": "crm", "external_ref": "PO-ARCHIVED"})
    assert resp.status == 200
    assert (await resp.json())["id"] == archived["ids"]["closed"]
