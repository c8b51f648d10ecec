"""The gateway in front of two real legacy MES processes on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway import gateway_config, run_gateway
from tests.support.legacy import mes_processes

pytestmark = pytest.mark.timeout(120)


def mes_gateway_config(tmp_path: Path, endpoints: list[str]) -> dict[str, object]:
    return gateway_config(
        tmp_path,
        clusters={"mes": {
            "endpoints": endpoints, "balancer": "least_request",
            "timeouts": {"connect": 0.5, "per_try": 5, "overall": 10},
            "retry": {"attempts": 2},
            "health_check": {"path": "/healthz", "interval": 0.5, "timeout": 0.5, "unhealthy_threshold": 2},
            "outlier": {"consecutive_failures": 2, "base_ejection_time": 5}}},
        routes=[{"name": "orders", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
                {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
                 "cluster": "mes", "rewrite_prefix": "/orders", "auth": {"required": False}}])


async def test_killing_one_mes_instance_fails_no_get(tmp_path: Path, pg_dsn: str) -> None:
    with mes_processes(pg_dsn, tmp_path) as mes:
        async with run_gateway(mes_gateway_config(tmp_path, [url for url, _ in mes]), tmp_path) as gw, \
                aiohttp.ClientSession() as s:
            async with s.post(f"{gw.internal}/orders", json={
                    "customer": "ACME", "material": "PLA", "quantity": 1, "model_name": "a.stl"}) as resp:
                assert resp.status == 201, await resp.text()
                order_id = (await resp.json())["id"]
            statuses: list[int] = []

            async def client(n: int) -> None:
                for i in range(n):
                    url = f"{gw.internal}/orders/{order_id}" if i % 2 else f"{gw.internal}/orders?per_page=5"
                    async with s.get(url) as r:
                        await r.read()
                        statuses.append(r.status)
                    await asyncio.sleep(0.005)

            clients = [asyncio.create_task(client(150)) for _ in range(4)]
            while len(statuses) < 100:
                await asyncio.sleep(0.01)
            mes[0][1].stop(signal.SIGKILL)  # the instance dies mid-stream, connections reset
            await asyncio.gather(*clients)
        assert len(statuses) == 600
        assert all(status == 200 for status in statuses), sorted(set(statuses))


async def test_order_lifecycle_through_the_gateway(tmp_path: Path, pg_dsn: str) -> None:
    with mes_processes(pg_dsn, tmp_path) as mes:
        async with run_gateway(mes_gateway_config(tmp_path, [url for url, _ in mes]), tmp_path) as gw, \
                aiohttp.ClientSession() as s:
            async with s.post(f"{gw.external}/partner/v1/orders", json={
                    "customer": "B2B Corp", "material": "PETG", "quantity": 3, "model_name": "x.stl"}) as r:
                assert r.status == 201
                order = await r.json()
            async with s.post(f"{gw.internal}/orders/{order['id']}/status",
                              json={"status": "MANUFACTURING_STARTED"}) as r:
                assert r.status == 409  # SUBMITTED → MANUFACTURING_STARTED skips steps
            cancel = {"status": "CANCELLED"}
            async with s.post(f"{gw.internal}/orders/{order['id']}/status", json=cancel) as r:
                assert r.status == 200
            async with s.get(f"{gw.external}/partner/v1/orders/{order['id']}") as r:
                assert (await r.json())["status"] == "CANCELLED"
