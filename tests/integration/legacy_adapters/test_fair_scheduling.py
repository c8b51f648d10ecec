"""Fair scheduling across partners (docs/pricing.md): per-owner lists, operators first, deficit round
robin by tier weight — on real Redis, and with real worker processes (a flood, a SIGKILL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from legacy_adapters.backend import PriceResult
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from legacy_adapters.queue_state import read_queue_state
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, SubmitSettings
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import (
    calls_per_model,
    sigkill_busy_worker_then_finish,
    submit_checked,
    wait_until,
    worker_processes,
)
from tests.support.waiting import eventually


def _models(owner: str, n: int) -> list[bytes]:
    base = 10 + 97 * sum(owner.encode()) % 400
    return [box_stl_binary(base + i, 20, 5 + (i % 7)) for i in range(n)]


def _fair(queue: PricingQueue, window: int) -> QuoteSubmitter:
    return QuoteSubmitter(queue, SubmitSettings(backlog_bound=10_000, fair_window=window))


async def _submit(submitter: QuoteSubmitter, owner: str, models: list[bytes], *, weight: int = 1,
                  tier: str = "bronze") -> list[str]:
    if owner == "internal":
        tier = ""
    return [(await submit_checked(submitter, QuoteRequest(model=m, material="PLA", owner=owner, tier=tier,
                                                          weight=weight))).job_id for m in models]


async def _stream_owners(queue: PricingQueue) -> list[str]:
    owners = []
    entries: Any = await queue.redis.xrange(queue.keys.stream)
    for _entry, fields in entries:
        job = await queue.job(fields[b"job_id"].decode())
        assert job is not None
        owners.append(job["owner"])
    return owners


async def _claimed_owners(queue: PricingQueue, count: int) -> tuple[list[str], int]:
    entries, waiting = await queue.claim("t", count)
    jobs = [await queue.job(fields["job_id"]) or {} for _entry, fields in entries]
    return [job.get("owner", "-") for job in jobs], waiting


async def test_claim_serves_operators_first_then_partners_by_tier_weight(queue: PricingQueue) -> None:
    submitter = _fair(queue, window=1)
    await _submit(submitter, "acme", _models("acme", 12), weight=1)
    await _submit(submitter, "globex", _models("globex", 6), weight=3, tier="gold")
    await _submit(submitter, "internal", _models("internal", 2))
    assert await queue.redis.xlen(queue.keys.stream) == 0  # no worker waits: nothing moved in yet
    owners, waiting = await _claimed_owners(queue, 10)
    # operators' two, globex (newcomer, weight 3), acme 1, globex 3, acme 1
    assert owners == ["internal", "internal", *["globex"] * 3, "acme", *["globex"] * 3, "acme"]
    assert waiting == 20 - 10
    assert await _claimed_owners(queue, 100) == (["acme"] * 10, 0)


async def test_an_owner_leaves_the_schedule_when_it_has_nothing_waiting(queue: PricingQueue) -> None:
    submitter = _fair(queue, window=1)
    await _submit(submitter, "acme", _models("acme", 3))
    await _submit(submitter, "globex", _models("globex", 2))
    assert await queue.redis.zcard(f"{queue.keys.prefix}:fair:active") == 2
    entries, waiting = await queue.claim("t", 100)
    assert (len(entries), waiting) == (5, 0)
    fair = f"{queue.keys.prefix}:fair"
    assert await queue.redis.keys(f"{fair}:*") == [f"{fair}:waiting".encode()]
    assert await queue.redis.get(f"{queue.keys.prefix}:fair:waiting") == b"0"
    assert await queue.redis.xlen(queue.keys.stream) == 5


async def test_a_submission_moves_a_job_in_only_for_a_worker_waiting_on_the_stream(
        queue: PricingQueue) -> None:
    submitter = _fair(queue, window=2)
    assert await queue.claim("idle-worker", 2, idle_ms=60_000) == ([], 0)  # found nothing: registered
    await _submit(submitter, "acme", _models("acme", 3))
    assert await queue.redis.xlen(queue.keys.stream) == 1  # one for the one waiting worker, 2 listed
    assert len(await queue.read("idle-worker", 2, 10)) == 1  # it is woken
    assert await queue.redis.zcard(queue.keys.fair_idle) == 0  # and no longer counted as waiting
    await _submit(submitter, "globex", _models("globex", 1))
    assert await queue.redis.xlen(queue.keys.stream) == 1  # nobody waits: globex's job stays listed


class GatedBackend:
    """A legacy whose calculations end only when the test releases them, one per release; it records
    the models in the order their calculations started."""

    def __init__(self, *, gated: bool = True) -> None:
        self.started: list[bytes] = []
        self.gate = asyncio.Semaphore(0)
        self.gated = gated

    async def price(self, model: bytes, *, material: str) -> PriceResult:
        self.started.append(model)
        if self.gated:
            await self.gate.acquire()
        return PriceResult(price_eur=Decimal("1.00"))

    def open(self) -> None:
        """Every calculation, running or to come, ends at once."""
        self.gated = False
        for _ in self.started:
            self.gate.release()

    async def aclose(self) -> None:
        return None


@asynccontextmanager
async def _worker(queue: PricingQueue, backend: GatedBackend, *, concurrency: int, block_ms: int = 1000
                  ) -> AsyncIterator[None]:
    stop = asyncio.Event()
    settings = WorkerSettings(name="w-order", concurrency=concurrency, block_ms=block_ms)
    task = asyncio.create_task(QuoteWorker(queue, backend, settings).run(stop))
    try:
        yield
    finally:
        stop.set()
        backend.open()
        if block_ms > 1000:  # not waited for: it reads the stream for that long before it sees the stop
            task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)


async def test_a_newcomers_quotes_take_the_next_free_slots_ahead_of_a_flood(queue: PricingQueue) -> None:
    """Dispatch order, not time: while acme's flood keeps both slots of the worker busy, globex's 5
    quotes are the next 5 calculations started (jobs moved into the stream ahead of time — a window of
    unread entries, or FIFO — would put acme's first)."""
    submitter, backend = _fair(queue, window=2), GatedBackend()
    flood, few = _models("acme", 20), _models("globex", 5)
    async with _worker(queue, backend, concurrency=2):
        await _submit(submitter, "acme", flood, weight=5)  # the gateway's default quantum

        def started(n: int) -> Any:
            async def check() -> bool:
                return len(backend.started) >= n
            return check

        await eventually(started(2), timeout=10, what="acme's first two calculations running")
        await _submit(submitter, "globex", few, weight=5)
        for n in range(3, 8):  # one slot frees at a time: what does the worker start next?
            backend.gate.release()
            await eventually(started(n), timeout=10, what=f"calculation {n} started")
        owners = ["globex" if m in few else "acme" for m in backend.started]
    assert owners[:7] == ["acme", "acme", *["globex"] * 5], owners


async def test_a_worker_waiting_on_an_empty_stream_gets_fair_jobs_without_waiting_its_block_out(
        queue: PricingQueue) -> None:
    """The wake-up of late binding: a worker blocked for a minute on the stream is handed every job
    submitted meanwhile (each one when it is free), never left waiting with jobs listed."""
    submitter, backend = _fair(queue, window=2), GatedBackend(gated=False)
    async with _worker(queue, backend, concurrency=1, block_ms=60_000):
        await eventually(lambda: _registered(queue), timeout=10, what="the worker waiting on the stream")
        ids = await _submit(submitter, "acme", _models("acme", 3))

        async def all_done() -> bool:
            jobs = [await queue.job(i) or {} for i in ids]
            return all(job.get("status") == "done" for job in jobs)

        await eventually(all_done, timeout=20, what="the 3 jobs priced (the worker blocks 60 s)")


async def _registered(queue: PricingQueue) -> bool:
    return bool(await queue.redis.zcard(queue.keys.fair_idle))


async def test_waiting_jobs_count_against_the_backlog_bound(queue: PricingQueue) -> None:
    submitter = QuoteSubmitter(queue, SubmitSettings(backlog_bound=3, fair_window=1))
    outcomes = [(await submit_checked(submitter, QuoteRequest(model=m, material="PLA", owner="acme"))).outcome
                for m in _models("acme", 4)]
    assert outcomes == ["queued", "queued", "queued", "full"]
    assert await queue.redis.xlen(queue.keys.stream) == 0
    assert (await read_queue_state(queue)).depth == 3  # the gauge sees the listed jobs too


async def test_the_oldest_age_counts_jobs_waiting_in_the_fair_scheduling_lists(queue: PricingQueue) -> None:
    submitter = _fair(queue, window=2)
    await _submit(submitter, "acme", _models("acme", 2))
    await _submit(submitter, "internal", _models("internal", 1))
    assert await queue.redis.xlen(queue.keys.stream) == 0  # no worker waits: all three listed

    async def aged() -> bool:
        return (await read_queue_state(queue)).oldest_age_seconds > 0

    await eventually(aged, timeout=5, what="listed jobs in pricing_queue_oldest_age_seconds")
    (_entry, fields), = (await queue.claim("t", 1))[0]  # the operators' job first: acme's two still listed
    assert (await queue.job(fields["job_id"]) or {})["owner"] == "internal"
    await eventually(aged, timeout=5, what="acme's listed jobs still counted")


@pytest.mark.slow
async def test_a_flooding_partner_does_not_hold_back_another_partners_quotes(
        redis_url: str, queue: PricingQueue, tmp_path: Path) -> None:
    submitter = _fair(queue, window=2)
    log = tmp_path / "calls.log"
    env = {"PRICING_LOCAL_DELAY": "0.05", "PRICING_CALL_LOG": str(log)}
    flood, few = _models("acme", 300), _models("globex", 5)
    with worker_processes(redis_url, tmp_path, 1, env=env, concurrency=2):
        acme = await _submit(submitter, "acme", flood)
        before = len(log.read_text().splitlines()) if log.exists() else 0
        globex = await _submit(submitter, "globex", few)

        async def globex_done() -> bool:
            jobs = [await queue.job(i) for i in globex]
            return all(j is not None and j["status"] == "done" for j in jobs)

        await wait_until(globex_done, 60, "globex's 5 quotes done")
        assert len(acme) == 300
    calls = log.read_text().split("\n")
    order = [line.split()[0] for line in calls if line]
    flood_shas = {(await queue.job(i) or {}).get("sha256") for i in acme}
    after = order[before:]
    flood_calls = [i for i, sha in enumerate(after) if sha in flood_shas]
    fiftieth = flood_calls[49] if len(flood_calls) >= 50 else len(after)  # not reached yet: all of it
    # every one of globex's quotes was priced before acme's 50th after globex arrived (FIFO: after 300)
    assert {(await queue.job(i) or {}).get("sha256") for i in globex} <= set(after[:fiftieth])
    assert len(calls_per_model(log)) >= 5


@pytest.mark.slow
async def test_sigkill_with_fair_scheduling_loses_nothing_and_records_each_job_once(
        redis_url: str, queue: PricingQueue, tmp_path: Path) -> None:
    submitter = _fair(queue, window=2)
    job_ids = [*await _submit(submitter, "acme", _models("acme", 24)),
               *await _submit(submitter, "globex", _models("globex", 8), weight=2, tier="gold"),
               *await _submit(submitter, "internal", _models("internal", 4))]
    log = tmp_path / "calls.log"
    env = {"PRICING_LOCAL_DELAY": "0.15", "PRICING_CALL_LOG": str(log)}
    with worker_processes(redis_url, tmp_path, 2, env=env, concurrency=2,
                          extra=("--visibility-timeout", "1.5", "--retry-base", "0.1")) as workers:
        jobs = await sigkill_busy_worker_then_finish(queue, job_ids, workers, 60)
    assert [j["completions"] for j in jobs] == ["1"] * 36
    calls = calls_per_model(log)
    assert len(calls) == 36
    assert sum(calls.values()) - 36 <= 2  # only what w0 held may run twice
    assert max(int(j.get("attempts", "0")) for j in jobs) >= 2  # a reclaimed job
    assert await queue.redis.xlen(queue.keys.stream) == 0
    assert await queue.redis.zcard(f"{queue.keys.prefix}:fair:active") == 0
