"""Load shedding in front of the real legacy MES made slow: operators first, partners shed.

Two legacy_sim MES processes on a real PostgreSQL answer every API request 0.2 s late (an
overloaded MES). Partners flood the external route; operators keep using the internal one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.support.gateway import gateway_config, run_gateway
from tests.support.legacy import mes_processes

pytestmark = pytest.mark.timeout(120)
DELAY = 0.2


async def test_slow_mes_sheds_partners_with_503_while_operators_succeed(tmp_path: Path, pg_dsn: str) -> None:
    with mes_processes(pg_dsn, tmp_path, extra=("--request-delay", str(DELAY))) as mes:
        cfg = gateway_config(tmp_path, clusters={"mes": {
            "endpoints": [url for url, _ in mes], "retry": {"attempts": 0},
            "health_check": {"path": "/healthz", "interval": 1.0},
            "adaptive_concurrency": {"initial_limit": 4, "min_limit": 4, "max_limit": 4, "max_queue": 4,
                                     "max_wait": 0.3}}},
            routes=[{"name": "orders", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
                    {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
                     "cluster": "mes", "rewrite_prefix": "/orders", "auth": {"required": False}}])
        async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
            partners: Counter[int] = Counter()
            retry_after: set[str | None] = set()
            stop = asyncio.Event()

            async def partner() -> None:
                while not stop.is_set():
                    async with asyncio.timeout(10), s.get(f"{gw.external}/partner/v1/orders") as resp:
                        await resp.read()
                        partners[resp.status] += 1
                        if resp.status == 503:
                            retry_after.add(resp.headers.get("Retry-After"))

            flood = [asyncio.create_task(partner()) for _ in range(16)]
            while partners[503] < 5:  # the flood is being shed
                await asyncio.sleep(0.05)
            operators: list[int] = []
            for _ in range(10):
                async with asyncio.timeout(10), s.get(f"{gw.internal}/orders?per_page=5") as resp:
                    await resp.read()
                    operators.append(resp.status)
            stop.set()
            await asyncio.gather(*flood)
    assert operators == [200] * 10
    assert partners[503] >= 5
    assert partners[200] > 0  # partners are limited, not locked out
    assert set(partners) <= {200, 503}
    assert retry_after == {"1"}
