"""A CRM order shows DELIVERED with the MES order id once the relay has it acknowledged.

Real processes on a real Redis and PostgreSQL, as in ``make run``: legacy MES and CRM, a sidecar
in front of each (the MES's relays ``crm:orders``), the gateway with the ``/crm/orders`` route.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess
from tests.support.gateway import GatewayUnderTest, gateway_process, legacy_pair_config
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)

ORDER = {"customer": "ACME", "material": "PETG", "quantity": 1, "model_name": "housing.stl"}


@dataclass
class Platform:
    gateway: GatewayUnderTest
    crm: str  # the CRM stand-in itself
    relay_metrics: str  # the MES sidecar's admin /metrics
    crm_metrics: str
    logs: Path
    dsn: str


def _spawn(name: str, args: list[str], logs: Path) -> ServerProcess:
    proc = ServerProcess([sys.executable, *args], log_path=logs / f"{name}.out",
                         env={**os.environ, "LOG_FILE": str(logs / f"{name}.log")})
    proc.start()
    return proc


@pytest.fixture
async def platform(tmp_path: Path, pg_dsn: str, redis_url: str) -> AsyncIterator[Platform]:
    logs = tmp_path / "logs"
    logs.mkdir()
    mes, crm, mes_sc, crm_sc, mes_admin = (free_port() for _ in range(5))
    procs = [
        _spawn("mes", ["-m", "legacy_sim", "mes", "--port", str(mes), "--dsn", pg_dsn,
                       "--instance-id", "mes-1"], logs),  # no --consume-crm: the relay delivers
        _spawn("crm", ["-m", "legacy_sim", "crm", "--port", str(crm), "--redis-url", redis_url], logs),
        _spawn("sidecar-mes", ["-m", "sidecar", "--kind", "mes", "--instance-id", "mes-1",
                               "--listen", f"127.0.0.1:{mes_sc}", "--admin", f"127.0.0.1:{mes_admin}",
                               "--upstream", f"http://127.0.0.1:{mes}",
                               "--relay-redis-url", redis_url], logs),
        _spawn("sidecar-crm", ["-m", "sidecar", "--kind", "crm", "--instance-id", "crm-1",
                               "--listen", f"127.0.0.1:{crm_sc}", "--admin", f"127.0.0.1:{free_port()}",
                               "--upstream", f"http://127.0.0.1:{crm}"], logs),
    ]
    try:
        for port in (mes, crm, mes_sc, crm_sc, mes_admin):
            wait_for_port(port, timeout=30)
        cfg = legacy_pair_config(logs, mes_url=f"http://127.0.0.1:{mes_sc}", crm_url=f"http://127.0.0.1:{crm_sc}")
        async with gateway_process(cfg, tmp_path) as gw:
            yield Platform(gateway=gw, crm=f"http://127.0.0.1:{crm}",
                           relay_metrics=f"http://127.0.0.1:{mes_admin}/metrics",
                           crm_metrics=f"http://127.0.0.1:{crm}/metrics", logs=logs, dsn=pg_dsn)
    finally:
        for proc in reversed(procs):
            proc.stop()



async def _get_json(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def _sample(url: str, series: str) -> float | None:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def _mes_order_id(dsn: str, crm_order_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        order_id = await conn.fetchval("SELECT id FROM orders WHERE external_ref = $1 AND source = 'crm'",
                                       crm_order_id)
    finally:
        await conn.close()
    assert isinstance(order_id, int)
    return order_id


async def test_crm_order_shows_delivered_with_the_mes_order_id_once_the_relay_acknowledged_it(
        platform: Platform) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{platform.gateway.internal}/crm/orders",
                                                    json=ORDER) as resp:
        assert resp.status == 202, await resp.text()
        crm_order_id = (await resp.json())["crm_order_id"]
    through_gateway = f"{platform.gateway.internal}/crm/orders/{crm_order_id}"
    seen: dict[str, Any] = {}

    async def delivered() -> bool:
        seen.update(await _get_json(through_gateway))
        return bool(seen["status"] == "DELIVERED")
    await eventually(delivered, timeout=30.0, what=f"{crm_order_id} DELIVERED")

    mes_order_id = await _mes_order_id(platform.dsn, crm_order_id)
    assert seen["mes_order_id"] == mes_order_id
    assert seen["delivered_at"]
    assert seen["order"]["model_name"] == "housing.stl"
    direct = await _get_json(f"{platform.crm}/orders/{crm_order_id}")  # the CRM stand-in itself
    assert (direct["status"], direct["mes_order_id"]) == ("DELIVERED", mes_order_id)
    mes_view = await _get_json(f"{platform.gateway.internal}/orders/{mes_order_id}")
    assert mes_view["external_ref"] == crm_order_id

    # observable: one status written back by the relay, one applied by the CRM, a log line for it
    assert await _sample(platform.relay_metrics, 'sidecar_relay_crm_status_writes_total'
                         '{legacy_instance="mes-1",outcome="success"}') == 1.0
    assert await _sample(platform.relay_metrics, 'sidecar_relay_crm_status_writes_total'
                         '{legacy_instance="mes-1",outcome="failure"}') == 0.0
    assert await _sample(platform.crm_metrics, 'orders_crm_status_updates_total{outcome="delivered"}') == 1.0

    async def logged() -> bool:  # log files are written line by line, but by other processes
        lines = [json.loads(li) for li in (platform.logs / "crm.log").read_text().splitlines()
                 if li.startswith("{")]
        return any(li.get("event.action") == "crm-status-update" and li.get("crm.order_id") == crm_order_id
                   and li.get("order.id") == mes_order_id for li in lines)
    await eventually(logged, timeout=10.0, what="the CRM's crm-status-update log line")
