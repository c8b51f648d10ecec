"""The pricing queue sharded over a real 3-primary Redis Cluster (docs/redis.md, "Pricing queue", step 2).

Each owner's jobs live in shard ``crc16(owner) mod S`` under ``{pricing:<s>}`` (one slot), the
shards spread over the primaries, and one worker serves them all: submit, read by id, complete,
dedup and idempotent replay per shard, dead letters and re-queue per shard, webhooks of every
shard, a flooded shard does not starve another, a SIGKILLed worker's jobs are reclaimed in every
shard, a step-1 queue (``{pricing}``) is still read and priced after the switch, and fair scheduling
keeps each owner's lists in its shard's slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio.cluster import RedisCluster

from contracts.webhook_secrets import WebhookSecretStore
from legacy_adapters.backend import PermanentPricingError, PriceResult
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from legacy_adapters.queue_state import read_queue_state
from legacy_adapters.redis_keys import QueueKeys, shard_of_owner
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, Submission, SubmitSettings
from legacy_adapters.webhooks import WebhookNotifier
from tests.integration.legacy_adapters.pricing_support import (
    distinct_models,
    submit_checked,
    wait_until,
    worker_processes,
)
from tests.support.redis_cluster_keys import ClusterNodes
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)
SHARDS = 4


def owners_in_distinct_shards(count: int, shards: int = SHARDS) -> list[str]:
    """``count`` partner ids whose shards all differ."""
    found: dict[int, str] = {}
    for i in range(1000):
        found.setdefault(shard_of_owner(f"partner-{i}", shards), f"partner-{i}")
        if len(found) == count:
            return list(found.values())
    raise AssertionError("not enough shards")


@pytest.fixture
async def sharded(redis_cluster_nodes: ClusterNodes) -> AsyncIterator[ShardedQueue]:
    queue = ShardedQueue.from_url(redis_cluster_nodes.spec, prefix="pricing", shards=SHARDS)
    await queue.ensure_group()
    yield queue
    await queue.aclose()


async def submit_as(submitter: QuoteSubmitter, owner: str, model: bytes, **kw: str) -> Submission:
    return await submit_checked(submitter, QuoteRequest(model=model, material="PLA", owner=owner, **kw))


async def run_worker(queue: ShardedQueue, backend: object, until: asyncio.Event, concurrency: int = 1
                     ) -> None:
    settings = WorkerSettings(name="w-test", block_ms=100, concurrency=concurrency, retry_base=0.05)
    await QuoteWorker(queue, backend, settings).run(until)  # type: ignore[arg-type]


async def fields(queue: ShardedQueue, job_ids: Iterable[str], name: str) -> set[str]:
    """The distinct values of field ``name`` over the jobs (``-`` for a missing job or field)."""
    return {(await queue.job(j) or {}).get(name, "-") for j in job_ids}


class Recorder:
    """A backend that prices every model at 1 EUR (or refuses it), recording the order of its calls."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.calls: list[str] = []
        self.refuse = refuse

    async def price(self, model: bytes, *, material: str) -> PriceResult:
        self.calls.append(hashlib.sha256(model).hexdigest())
        if self.refuse:
            raise PermanentPricingError("the legacy refused the model")
        return PriceResult(price_eur=Decimal("1.00"))

    async def aclose(self) -> None:
        return None


async def test_each_owner_is_queued_in_its_shard_spread_over_the_primaries_and_priced_by_one_worker(
        sharded: ShardedQueue) -> None:
    submitter = QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100))
    owners = owners_in_distinct_shards(SHARDS)
    model = distinct_models(1)[0]
    jobs = {o: (await submit_as(submitter, o, model, idempotency_key="k1")).job_id for o in owners}
    for owner, job_id in jobs.items():  # the id names the owner's shard; the record is there
        shard = shard_of_owner(owner, SHARDS)
        assert job_id.startswith(f"{shard}-")
        assert await sharded.redis.exists(f"{{pricing:{shard}}}:job:{job_id}")
        assert (await sharded.job(job_id) or {})["owner"] == owner
    assert isinstance(sharded.redis, RedisCluster)
    primaries = {sharded.redis.get_node_from_key(f"{{pricing:{s}}}:stream").name for s in range(SHARDS)}
    assert len(primaries) >= 2  # the queue is not on one shard of the cluster any more
    assert (await read_queue_state(sharded)).depth == SHARDS  # the probe sums the shards
    assert (await read_queue_state(sharded)).model_bytes == SHARDS * len(model)  # stored per shard

    stop, backend = asyncio.Event(), Recorder()
    worker = asyncio.create_task(run_worker(sharded, backend, stop))

    async def all_done() -> bool:
        return await fields(sharded, jobs.values(), "status") == {"done"}

    await eventually(all_done, timeout=30, what="every shard's job priced")
    stop.set()
    await worker
    assert len(backend.calls) == SHARDS  # no dedup across owners (docs/pricing.md)
    for owner, job_id in jobs.items():  # dedup and idempotency hold inside each owner's shard
        assert (await submit_as(submitter, owner, model)).outcome == "cached"
        replay = await submit_as(submitter, owner, model, idempotency_key="k1")
        assert (replay.outcome, replay.job_id) == ("replay", job_id)
    state = await read_queue_state(sharded)
    assert (state.depth, state.in_flight, state.model_bytes) == (0, 0, 0)


async def test_a_flooded_shard_does_not_starve_another_owners_job(sharded: ShardedQueue) -> None:
    submitter = QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100))
    # the flooder's shard comes first in a fixed order: only the rotation serves the other one early
    flooder, other = sorted(owners_in_distinct_shards(2), key=lambda o: shard_of_owner(o, SHARDS))
    for model in distinct_models(12):
        await submit_as(submitter, flooder, model)
    single = distinct_models(13)[12]
    await submit_as(submitter, other, single)  # queued after the flood
    stop, backend = asyncio.Event(), Recorder()
    worker = asyncio.create_task(run_worker(sharded, backend, stop))
    await wait_until(lambda: _at_least(backend, 13), 30, "all 13 jobs priced")
    stop.set()
    await worker
    # round robin over the shards: the other owner's job is one of the first two priced, not the 13th
    assert hashlib.sha256(single).hexdigest() in backend.calls[:2]


async def _at_least(backend: Recorder, n: int) -> bool:
    return len(backend.calls) >= n


async def test_dead_letters_and_requeue_stay_in_each_shard(
        sharded: ShardedQueue, redis_cluster_nodes: ClusterNodes) -> None:
    submitter = QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100))
    owners = owners_in_distinct_shards(2)
    jobs = [(await submit_as(submitter, o, distinct_models(1)[0])).job_id for o in owners]
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(sharded, Recorder(refuse=True), stop))

    async def all_failed() -> bool:
        return await fields(sharded, jobs, "status") == {"failed"}

    await eventually(all_failed, timeout=30, what="both jobs dead-lettered")
    stop.set()
    await worker
    assert sorted(await sharded.dead_jobs()) == sorted(jobs)
    for owner, job_id in zip(owners, jobs, strict=True):
        shard = shard_of_owner(owner, SHARDS)
        assert await sharded.redis.zscore(f"{{pricing:{shard}}}:dead", job_id) is not None
    cli = await asyncio.create_subprocess_exec(  # the operator's CLI, on every shard
        sys.executable, "-m", "legacy_adapters.jobs", "--redis-url", redis_cluster_nodes.spec,
        "--shards", str(SHARDS), "requeue", "--all-dead", stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0
    assert sorted(out.decode().split()) == sorted([*jobs, "queued", "queued"])
    for owner in owners:
        shard = shard_of_owner(owner, SHARDS)
        assert await sharded.redis.xlen(f"{{pricing:{shard}}}:stream") == 1  # back in its own shard
    assert await sharded.dead_jobs() == []


async def test_webhooks_of_every_shard_are_delivered(sharded: ShardedQueue, tmp_path: Path) -> None:
    got: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(request.headers["webhook-id"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    owners = owners_in_distinct_shards(3)
    secrets = WebhookSecretStore(tmp_path / "webhook-secrets.json")
    for owner in owners:
        secrets.ensure(owner)
    async with TestServer(app, host="127.0.0.1") as server:
        submitter = QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100))
        url = str(server.make_url("/hook"))
        model = distinct_models(1)[0]
        jobs = [(await submit_as(submitter, o, model, callback_url=url)).job_id for o in owners]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run_worker(sharded, Recorder(), stop)),
                 asyncio.create_task(WebhookNotifier(sharded, secrets, allow_private=True).run(stop))]

        async def delivered() -> bool:
            return await fields(sharded, jobs, "webhook_status") == {"delivered"}

        await eventually(delivered, timeout=30, what="every shard's webhook delivered")
        stop.set()
        await asyncio.gather(*tasks)
    assert sorted(got) == sorted(jobs)


async def test_a_step_one_queue_is_still_read_and_priced_after_the_switch_to_shards(
        redis_cluster_nodes: ClusterNodes) -> None:
    old = PricingQueue(RedisCluster.from_url(redis_cluster_nodes.seed_url), QueueKeys("{pricing}"))
    await old.ensure_group()
    old_submitter = QuoteSubmitter(old, SubmitSettings(backlog_bound=100))
    waiting = (await submit_as(old_submitter, "partner-1", distinct_models(1)[0])).job_id
    assert len(waiting) == 32  # a plain id of the unsharded layout
    await old.aclose()
    sharded = ShardedQueue.from_url(redis_cluster_nodes.spec, prefix="{pricing}", shards=SHARDS)
    try:
        await sharded.ensure_group()
        assert (await sharded.job(waiting) or {})["status"] == "queued"  # read by its plain id
        assert (await read_queue_state(sharded)).depth == 1
        fresh = (await submit_as(QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100)), "partner-1",
                                 distinct_models(2)[1])).job_id
        assert fresh.startswith(f"{shard_of_owner('partner-1', SHARDS)}-")
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(sharded, Recorder(), stop))

        async def both_done() -> bool:
            return await fields(sharded, (waiting, fresh), "status") == {"done"}

        await eventually(both_done, timeout=30, what="the old layout's job and the new one priced")
        stop.set()
        await worker
        assert await sharded.redis.xlen("{pricing}:stream") == 0
    finally:
        await sharded.aclose()


@pytest.mark.slow
async def test_sigkill_mid_job_loses_nothing_in_any_shard(
        redis_cluster_nodes: ClusterNodes, sharded: ShardedQueue, tmp_path: Path) -> None:
    submitter = QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100))
    owners = owners_in_distinct_shards(SHARDS)
    models = distinct_models(16)
    job_ids = [(await submit_as(submitter, owners[i % SHARDS], m)).job_id for i, m in enumerate(models)]
    log = tmp_path / "calls.log"
    env = {"PRICING_LOCAL_DELAY": "0.3", "PRICING_CALL_LOG": str(log)}
    with worker_processes(redis_cluster_nodes.spec, tmp_path, 2, env=env, concurrency=2,
                          extra=("--shards", str(SHARDS), "--visibility-timeout", "1.5",
                                 "--retry-base", "0.1")) as workers:

        async def victim_is_busy() -> bool:
            jobs = [await sharded.job(j) for j in job_ids]
            return any(j and j["status"] == "running" and j.get("worker") == "w0" for j in jobs)

        await wait_until(victim_is_busy, 30, "worker w0 running a job")
        assert workers[0].proc is not None
        workers[0].proc.send_signal(signal.SIGKILL)
        workers[0].proc.wait(5)

        async def all_done() -> bool:
            jobs = [await sharded.job(j) for j in job_ids]
            return all(j is not None and j["status"] == "done" for j in jobs)

        await wait_until(all_done, 60, "all 16 jobs done")
    jobs = [await sharded.job(j) or {} for j in job_ids]
    assert [j["completions"] for j in jobs] == ["1"] * 16  # recorded once each
    assert max(int(j.get("attempts", "0")) for j in jobs) >= 2  # w0's job was reclaimed and run again
    calls = [line.split()[0] for line in log.read_text().splitlines() if line]
    assert len(set(calls)) == 16
    assert len(calls) - 16 <= 2  # only w0's jobs in hand ran twice
    state = await read_queue_state(sharded)
    assert (state.depth, state.in_flight) == (0, 0)
    assert json.loads(jobs[0]["result"])["price_eur"]



async def test_fair_scheduling_keeps_each_owners_lists_in_its_shards_slot_and_prices_everything(
        sharded: ShardedQueue) -> None:
    submitter = QuoteSubmitter(sharded, SubmitSettings(backlog_bound=100, fair_window=1))
    owners = owners_in_distinct_shards(2)
    models = distinct_models(8)
    job_ids = [(await submit_as(submitter, owners[i % 2], m)).job_id for i, m in enumerate(models)]
    for owner in owners:  # each owner's list and the round sit in its shard's slot (one script each)
        prefix = f"{{pricing:{shard_of_owner(owner, SHARDS)}}}"
        keys = [f"{prefix}:fair:{k}" for k in (f"q:{owner}", "active", "idle")] + [f"{prefix}:stream"]
        assert len({sharded.redis.keyslot(k) for k in keys}) == 1
        assert await sharded.redis.llen(keys[0]) == 4  # no worker waits yet: all of them listed
    recorder = Recorder()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(sharded, recorder, stop, concurrency=2))

    async def all_done() -> bool:
        return await fields(sharded, job_ids, "status") == {"done"}

    await eventually(all_done, timeout=60, what="every fairly scheduled job on the Cluster priced")
    stop.set()
    await worker
    assert len(recorder.calls) == 8
    for owner in owners:
        prefix = f"{{pricing:{shard_of_owner(owner, SHARDS)}}}"
        assert await sharded.redis.zcard(f"{prefix}:fair:active") == 0
