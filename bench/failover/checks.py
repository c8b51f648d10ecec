"""What the run lost or did twice, read from the places that own the truth: the gateways' job API
(every accepted quote job), the MES database (every CRM order relayed, every legacy calculation)
and the gateways' /metrics (degraded mode, failovers seen)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from bench.failover.stack import Stack

FINAL = ("done", "failed")


async def job_states(stack: Stack, ids: list[str], wait: float) -> dict[str, str]:
    """Poll ``GET /partner/v1/quotes/{id}`` until every job is done/failed or ``wait`` s; id → status
    (``missing`` for a 404: the job record is gone)."""
    states = dict.fromkeys(ids, "queued")
    deadline = time.monotonic() + wait
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(32)

        async def one(job: str, n: int) -> None:
            gw = stack.gateways[n % len(stack.gateways)]
            async with sem, session.get(f"{gw.external}/partner/v1/quotes/{job}",
                                        headers={"X-API-Key": stack.keys["quotes"]}) as r:
                states[job] = "missing" if r.status == 404 else str((await r.json()).get("status", "?"))

        while True:
            pending = [j for j, s in states.items() if s not in FINAL]
            if not pending or time.monotonic() > deadline:
                return states
            await asyncio.gather(*(one(j, n) for n, j in enumerate(pending)), return_exceptions=True)
            await asyncio.sleep(0.5)


async def relayed(dsn: str, refs: list[str], wait: float) -> set[str]:
    """The CRM order ids of ``refs`` that reached the MES (``orders.external_ref``), waiting ``wait`` s."""
    deadline = time.monotonic() + wait
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            rows = await conn.fetch("SELECT external_ref FROM orders WHERE source = 'crm' "
                                    "AND external_ref = ANY($1::text[])", refs)
            found = {r["external_ref"] for r in rows}
            if len(found) == len(set(refs)) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def calculations_twice(dsn: str) -> int:
    """Models the MES priced more than once (each job of the run has a model of its own)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM (SELECT model_sha256 FROM price_calculations "
                                       "GROUP BY model_sha256 HAVING count(*) > 1) twice"))
    finally:
        await conn.close()


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@dataclass
class ModeTimeline:
    """``(wall time, degraded?)`` per gateway and the failovers counter, polled every ``interval``."""

    interval: float = 0.2
    samples: list[list[tuple[float, bool]]] = field(default_factory=list)
    failovers: list[float] = field(default_factory=list)
    switches: list[float] = field(default_factory=list)  # gateway_ratelimit_mode_switches_total{degraded}

    async def watch(self, stack: Stack, stop: asyncio.Event) -> None:
        self.samples = [[] for _ in stack.gateways]
        self.failovers = [0.0 for _ in stack.gateways]
        self.switches = [0.0 for _ in stack.gateways]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while not stop.is_set():
                for i, gw in enumerate(stack.gateways):
                    try:
                        async with session.get(f"{gw.admin}/metrics") as r:
                            text = await r.text()
                    except (aiohttp.ClientError, TimeoutError):
                        continue
                    self.samples[i].append((time.time(), _sample(text, "gateway_ratelimit_degraded") > 0))
                    self.failovers[i] = _sample(text, "gateway_redis_failovers_total")
                    self.switches[i] = _sample(text, 'gateway_ratelimit_mode_switches_total{mode="degraded"}')
                await asyncio.sleep(self.interval)

    def degraded_now(self) -> bool:
        return any(s and s[-1][1] for s in self.samples)

    def degraded_span(self, since: float) -> tuple[float, float] | None:
        """(first degraded sample after ``since``, when the last gateway was shared again: nan if never)."""
        first, back = float("inf"), 0.0
        for gw in self.samples:
            points = [(t, d) for t, d in gw if t >= since]
            degraded = [t for t, d in points if d]
            if not degraded:
                continue
            first = min(first, degraded[0])
            shared = [t for t, d in points if t > degraded[-1] and not d]
            back = max(back, shared[0]) if shared else float("inf")
        return None if first == float("inf") else (first, back if back != float("inf") else float("nan"))
