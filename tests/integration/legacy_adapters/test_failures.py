"""Retries with back-off, dead letters with their reason, re-queue, graceful SIGTERM hand-back."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from devstack.ports import free_port
from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteSubmitter
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.conftest import submit
from tests.integration.legacy_adapters.pricing_support import ROOT, wait_until, worker_processes

FLAKY = "tests.integration.legacy_adapters.flaky_backend:flaky"
REFUSES = "tests.integration.legacy_adapters.flaky_backend:refuses"


def _status(queue: PricingQueue, job_id: str, wanted: str):
    async def check() -> bool:
        return (await queue.job(job_id) or {}).get("status") == wanted
    return check


async def test_transient_failures_dead_letter_after_max_attempts_and_requeue_finishes_the_job(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    job_id = (await submit(submitter, box_stl_binary(5, 6, 7))).job_id
    follower = (await submit(submitter, box_stl_binary(5, 6, 7))).job_id
    with worker_processes(redis_url, tmp_path, 1, backend=FLAKY, env={"PRICING_FAIL_FLAG": str(flag)},
                          extra=("--max-attempts", "3", "--retry-base", "0.05")):
        await wait_until(_status(queue, job_id, "failed"), 20, "dead letter")
        job = await queue.job(job_id) or {}
        assert job["attempts"] == "3"
        assert "gave up after 3 attempts" in job["error"]
        assert "unreachable" in job["error"]
        assert await queue.dead_jobs() == [job_id]
        assert (await queue.job(follower) or {})["status"] == "failed"
        flag.unlink()
        out = subprocess.run([sys.executable, "-m", "legacy_adapters.jobs", "--redis-url", redis_url,
                              "requeue", "--all-dead"], capture_output=True, text=True, cwd=ROOT, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [job_id, "queued"]
        await wait_until(_status(queue, job_id, "done"), 20, "re-queued job done")
        await wait_until(_status(queue, follower, "done"), 5, "its follower done")
    assert await queue.dead_jobs() == []


async def test_permanent_refusal_is_dead_lettered_at_once(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    job_id = (await submit(submitter, box_stl_binary(5, 6, 8))).job_id
    with worker_processes(redis_url, tmp_path, 1, backend=REFUSES):
        await wait_until(_status(queue, job_id, "failed"), 20, "dead letter")
    job = await queue.job(job_id) or {}
    assert job["attempts"] == "1"
    assert "cannot manufacture" in job["error"]


async def test_sigterm_hands_an_unfinished_job_back_at_once(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    job_id = (await submit(submitter, box_stl_binary(5, 6, 9))).job_id
    slow = {"PRICING_LOCAL_DELAY": "3"}
    with worker_processes(redis_url, tmp_path, 1, env=slow, extra=("--grace-period", "0.3",
                                                                   "--visibility-timeout", "60")) as ws:
        await wait_until(_status(queue, job_id, "running"), 20, "job running")
        ws[0].stop(signal.SIGTERM, timeout=15)
        assert ws[0].proc is not None
        assert ws[0].proc.returncode == 0
    job = await queue.job(job_id) or {}
    assert job["status"] == "queued"
    assert job["attempts"] == "0"
    assert await queue.redis.xlen(queue.keys.stream) == 1
    with worker_processes(redis_url, tmp_path, 1, extra=("--visibility-timeout", "60")):
        # visibility timeout 60 s: only the hand-back (a fresh entry) can make this finish quickly
        await wait_until(_status(queue, job_id, "done"), 20, "job done by another worker")
    await asyncio.sleep(0)


UNREACHED_WORKER = ("--max-attempts", "2", "--retry-base", "0.05")


@asynccontextmanager
async def legacy_price(port: int, *, unavailable_calls: int = 0) -> AsyncIterator[list[int]]:
    """A legacy ``POST /price`` on ``port``: 503 for the first ``unavailable_calls`` calls, then a price."""
    calls: list[int] = []

    async def price(_request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) <= unavailable_calls:
            return web.json_response({"detail": "legacy MES backing store unavailable"}, status=503)
        return web.json_response({"price_eur": "12.50", "volume_mm3": 315.0})

    app = web.Application()
    app.router.add_post("/price", price)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield calls
    finally:
        await runner.cleanup()


async def _ended(queue: PricingQueue, job_id: str) -> bool:
    return (await queue.job(job_id) or {}).get("status") in ("done", "failed")


async def _done_in_one_attempt(queue: PricingQueue, job_id: str) -> None:
    await wait_until(lambda: _ended(queue, job_id), 20, "job ended")
    job = await queue.job(job_id) or {}
    assert job["status"] == "done", job
    assert job["attempts"] == "1"
    assert await queue.dead_jobs() == []


async def test_a_legacy_refusing_connections_uses_up_no_attempts_and_the_job_waits_for_it(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    """One MES SIGKILLed under load for a few seconds dead-lettered quotes (make chaos): no more."""
    port = free_port()
    job_id = (await submit(submitter, box_stl_binary(5, 7, 9))).job_id
    log = tmp_path / "worker-0.log"

    async def tried_more_than_max_attempts_or_gave_up() -> bool:
        tries = log.read_text().count("legacy pricing unreachable") if log.exists() else 0
        return tries >= 4 or (await queue.job(job_id) or {}).get("status") == "failed"

    with worker_processes(redis_url, tmp_path, 1, backend=f"http://127.0.0.1:{port}", extra=UNREACHED_WORKER):
        await wait_until(tried_more_than_max_attempts_or_gave_up, 20, "four calls to a closed port")
        async with legacy_price(port):  # the legacy is back
            await _done_in_one_attempt(queue, job_id)


async def test_a_legacy_answering_503_uses_up_no_attempts_and_the_job_waits_for_it(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    """The MES database restarted under load dead-lettered quotes (make chaos): a 503 is the MES's."""
    port = free_port()
    job_id = (await submit(submitter, box_stl_binary(5, 7, 11))).job_id
    # more 503s than --max-attempts: the MES's database is down for a while
    async with legacy_price(port, unavailable_calls=4) as calls:
        with worker_processes(redis_url, tmp_path, 1, backend=f"http://127.0.0.1:{port}",
                              extra=UNREACHED_WORKER):
            await _done_in_one_attempt(queue, job_id)
    assert len(calls) == 5
