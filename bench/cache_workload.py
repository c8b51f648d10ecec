"""The operators' dashboard workload of ``bench/cache.py``: readers, a status changer, a stale check.

* **Operators**: each refreshes one status-filtered list (page 1, 50 per page) every
  ``interval`` seconds on a fixed schedule (a late answer does not shift the next refresh).
* **Changer**: moves orders one lifecycle step forward at ``changes_per_minute``, alternately
  through the gateway and directly on the MES (bypassing gateway and sidecar: only the
  sidecar's database poller can report those). It picks orders operators can see (page 1 of
  each active status), so the changes show in the lists.
* **Stale check**: a read *sent* at least 1 s after a change was acknowledged must not show the
  order in an earlier lifecycle status than the acknowledged one.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

FORWARD = ("SUBMITTED", "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED",
           "MANUFACTURING_COMPLETED", "SHIPPED", "CLOSED")
ACTIVE = FORWARD[:-1]
RANK = {s: i for i, s in enumerate(FORWARD)}
GRACE_S = 1.0


@dataclass
class Outcome:
    """What one variant measured."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    reads_checked: int = 0
    stale_reads: int = 0
    changes: int = 0
    change_errors: int = 0
    acked: dict[int, list[tuple[float, str]]] = field(default_factory=dict)

    def check(self, sent_at: float, items: list[dict[str, Any]]) -> None:
        stale = False
        for order in items:
            due = [s for t, s in self.acked.get(order["id"], []) if t + GRACE_S <= sent_at]
            if due:
                self.reads_checked += 1
                stale |= RANK.get(order["status"], 99) < RANK[due[-1]]
        self.stale_reads += stale

    def summary(self, seconds: float) -> dict[str, float]:
        lat = sorted(self.latencies)
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
        return {"requests": len(lat), "errors": self.errors, "throughput_rps": len(lat) / seconds,
                "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000,
                "orders_checked": self.reads_checked, "stale_reads": self.stale_reads,
                "changes": self.changes, "change_errors": self.change_errors}


async def _operator(s: aiohttp.ClientSession, url: str, start: float, interval: float, until: float,
                    out: Outcome) -> None:
    tick = start
    while tick < until:
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
        sent = time.monotonic()
        try:
            async with s.get(url) as resp:
                body = await resp.json() if resp.status == 200 else None
            out.latencies.append(time.monotonic() - sent)
            if body is None:
                out.errors += 1
            else:
                out.check(sent, body["items"])
        except (aiohttp.ClientError, TimeoutError):
            out.errors += 1
        tick += interval


async def visible_orders(s: aiohttp.ClientSession, mes: str) -> dict[int, str]:
    """Order id → status for page 1 of every active status, read directly from the MES."""
    pool: dict[int, str] = {}
    for status in ACTIVE:
        async with s.get(f"{mes}/orders", params={"status": status, "per_page": "50"}) as resp:
            pool.update({o["id"]: o["status"] for o in (await resp.json())["items"]})
    return pool


async def _changer(s: aiohttp.ClientSession, gateway: str, mes: str, per_minute: float, until: float,
                   out: Outcome, rng: random.Random) -> None:
    pool = await visible_orders(s, mes)
    every = 60.0 / per_minute
    tick = time.monotonic()
    while tick < until and pool:
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
        order_id = rng.choice(sorted(pool))
        target = FORWARD[RANK[pool[order_id]] + 1]
        base = gateway if out.changes % 2 == 0 else mes
        try:
            async with s.post(f"{base}/orders/{order_id}/status", json={"status": target}) as resp:
                ok = resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            out.acked.setdefault(order_id, []).append((time.monotonic(), target))
            out.changes += 1
            pool[order_id] = target
            if target == "CLOSED":
                del pool[order_id]
        else:
            out.change_errors += 1
            pool.pop(order_id, None)
        tick += every


async def run_workload(*, gateway: str, mes: str, operators: int, interval: float, duration: float,
                       changes_per_minute: float, seed: int = 7) -> Outcome:
    """Run operators and the changer for ``duration`` seconds; wait for the last answers."""
    rng = random.Random(seed)
    out = Outcome()
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=operators + 8)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as s:
        start = time.monotonic()
        until = start + duration
        tasks = [asyncio.create_task(_operator(
            s, f"{gateway}/orders?status={ACTIVE[i % len(ACTIVE)]}&page=1&per_page=50",
            start + interval * i / operators, interval, until, out)) for i in range(operators)]
        tasks.append(asyncio.create_task(_changer(s, gateway, mes, changes_per_minute, until, out, rng)))
        await asyncio.gather(*tasks)
    return out
