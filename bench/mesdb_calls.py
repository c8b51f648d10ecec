"""The calls ``bench.mesdb`` times: the operators' lists through a real legacy MES (HTTP, no cache
in front), the legacy's count statement and the sidecar's probe cycle (asyncpg, like both of them)."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import asyncpg

from contracts.lifecycle import ACTIVE_STATUS_NAMES
from sidecar import probe_queries as probes

COUNT = (
    "SELECT count(*) FROM orders WHERE ($1::text IS NULL OR status = $1) "
    "AND ($2::text IS NULL OR partner_id = $2)"
)  # the legacy's own text (legacy_sim/mes/orders_repo.py)
#: one probe cycle of the sidecar (the terminal counts run far less often: timed on their own)
PROBE_CYCLE = (probes.ACTIVE_ORDERS, probes.ORDERS_WATERMARK, probes.PRICING_WATERMARK)


@dataclass(frozen=True, slots=True)
class Timing:
    """Latencies of one call, in ms."""

    name: str
    p50_ms: float
    p95_ms: float
    samples: int


def timing(name: str, seconds: list[float]) -> Timing:
    """p50/p95 of ``seconds``, in ms."""
    ms = sorted(s * 1000 for s in seconds)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return Timing(name, statistics.median(ms), p95, len(ms))


async def time_call(name: str, call: Callable[[], Awaitable[object]], repeat: int) -> Timing:
    await call()  # warm: the first call of a session prepares the statement
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return timing(name, seconds)


async def list_orders(http: aiohttp.ClientSession, params: dict[str, str]) -> None:
    """One ``GET /orders`` (the legacy's list), read to the end; anything but 200 fails the bench."""
    async with http.get("/orders", params=params) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()


async def measure(mes_url: str, dsn: str, *, repeat: int, partner: str) -> list[Timing]:
    """Every call of the comparison, ``repeat`` times each, one after the other (no concurrency)."""
    found: list[Timing] = []
    async with aiohttp.ClientSession(mes_url, timeout=aiohttp.ClientTimeout(total=120)) as http:
        get = functools.partial(list_orders, http)
        for status in ACTIVE_STATUS_NAMES:
            found.append(
                await time_call(
                    f"MES list status={status}", functools.partial(get, {"status": status}), repeat
                )
            )
        found.append(await time_call("MES list (no filter)", lambda: get({}), repeat))
        found.append(
            await time_call(f"MES list partner_id={partner}", lambda: get({"partner_id": partner}), repeat)
        )
        found.append(
            await time_call(
                "MES list status=CANCELLED page 20",
                lambda: get({"status": "CANCELLED", "page": "20"}),
                repeat,
            )
        )
    conn = await asyncpg.connect(dsn)
    try:
        found.append(
            await time_call(
                "count status=MANUFACTURING_STARTED",
                lambda: conn.fetchval(COUNT, "MANUFACTURING_STARTED", None),
                repeat,
            )
        )
        found.append(await time_call("count (no filter)", lambda: conn.fetchval(COUNT, None, None), repeat))

        async def cycle() -> None:
            for query in PROBE_CYCLE:
                await conn.fetch(query)
            await conn.fetch(probes.NEW_ORDERS, 0)
            await conn.fetch(probes.PRICING_IN_PROGRESS, 0)

        found.append(await time_call("probe cycle (sidecar)", cycle, repeat))
        found.append(
            await time_call(
                "probe terminal counts", lambda: conn.fetch(probes.TERMINAL_ORDERS), max(3, repeat // 5)
            )
        )
    finally:
        await conn.close()
    return found


class SteadyLoad:
    """A small steady client loop on the MES (lists, one order, a new order and its status change)."""

    def __init__(self, mes_url: str) -> None:
        self.mes_url = mes_url
        self.requests = 0
        self.failures: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        body = {"customer": "Bench", "material": "PLA", "quantity": 1, "model_name": "b.stl"}
        async with aiohttp.ClientSession(self.mes_url, timeout=aiohttp.ClientTimeout(total=30)) as http:
            while not stop.is_set():
                for method, path, payload, wanted in (
                    ("GET", "/orders?status=SHIPPED", None, 200),
                    ("GET", "/orders", None, 200),
                    ("POST", "/orders", body, 201),
                ):
                    try:
                        async with http.request(method, path, json=payload) as resp:
                            data = await resp.json()
                            ok = resp.status == wanted
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        ok, data = False, repr(exc)
                    self.requests += 1
                    if not ok:
                        self.failures.append(f"{method} {path}: {data}")
                    elif method == "POST":
                        async with http.post(
                            f"/orders/{data['id']}/status", json={"status": "CANCELLED"}
                        ) as resp:
                            self.requests += 1
                            if resp.status != 200:
                                self.failures.append(f"cancel: {resp.status}")
