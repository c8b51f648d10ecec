"""Nothing lost: real worker processes, one SIGKILLed mid-job; every job finishes, recorded once."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest

from legacy_adapters.queue import PricingQueue
from legacy_adapters.redis_keys import GROUP
from legacy_adapters.submit import QuoteSubmitter
from tests.integration.legacy_adapters.conftest import submit
from tests.integration.legacy_adapters.pricing_support import (
    calls_per_model,
    distinct_models,
    wait_until,
    worker_processes,
)

pytestmark = pytest.mark.slow
CONCURRENCY = 2


async def test_sigkill_mid_job_loses_nothing_and_records_each_job_once(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    """The victim ``w0`` is killed while it provably holds jobs mid-calculation: its calculations
    last (``PRICING_LOCAL_DELAY`` 600 s for it alone), so the jobs it started cannot finish between
    the moment the test sees them and the SIGKILL — on a loaded box they once did, and nothing was
    left to reclaim. ``w1`` prices the rest at 0.15 s and takes the victim's jobs over after the
    visibility timeout: exactly those are attempted and priced twice, every job is recorded once."""
    models = distinct_models(50)
    job_ids = [(await submit(submitter, m)).job_id for m in models]
    sha_of = {j: hashlib.sha256(m).hexdigest() for j, m in zip(job_ids, models, strict=True)}
    assert await queue.redis.xlen(queue.keys.stream) == 50
    log = tmp_path / "calls.log"
    env = {"PRICING_LOCAL_DELAY": "0.15", "PRICING_CALL_LOG": str(log)}
    with worker_processes(redis_url, tmp_path, 2, env=env, concurrency=CONCURRENCY,
                          env_of={0: {"PRICING_LOCAL_DELAY": "600"}},
                          extra=("--visibility-timeout", "3", "--retry-base", "0.1")) as workers:
        held: list[str] = []

        async def victim_holds_its_jobs_mid_calculation() -> bool:
            """Every entry w0 read is started by it and its legacy call made: nothing it holds is
            merely read (that one would come back with 1 attempt), nothing can finish any more."""
            pending = await queue.redis.xpending_range(queue.keys.stream, GROUP, min="-", max="+",
                                                       count=10, consumername="w0")
            running = [j for j in job_ids if (job := await queue.job(j))
                       and job.get("status") == "running" and job.get("worker") == "w0"]
            called = calls_per_model(log)
            held[:] = running
            return (len(running) == CONCURRENCY == len(pending)
                    and all(called[sha_of[j]] == 1 for j in running))

        await wait_until(victim_holds_its_jobs_mid_calculation, 30, "w0 holding 2 jobs mid-calculation")
        assert workers[0].proc is not None
        workers[0].proc.send_signal(signal.SIGKILL)  # no chance to hand anything back
        workers[0].proc.wait(5)

        async def all_done() -> bool:
            jobs = [await queue.job(j) for j in job_ids]
            return all(j is not None and j["status"] == "done" for j in jobs)

        await wait_until(all_done, 40, "all 50 jobs done")
    jobs = {j: await queue.job(j) or {} for j in job_ids}
    assert [job["completions"] for job in jobs.values()] == ["1"] * 50
    # reclaimed: the victim's jobs were started twice (by w0, then by w1), every other one once
    assert {j: int(job["attempts"]) for j, job in jobs.items()} == {j: 2 if j in held else 1 for j in job_ids}
    assert {jobs[j].get("worker") for j in held} == {"w1"}
    # at least once: only the jobs w0 had in hand when it died were priced twice
    calls = calls_per_model(log)
    assert calls == {sha_of[j]: 2 if j in held else 1 for j in job_ids}
    assert await queue.redis.xlen(queue.keys.stream) == 0
    assert (await queue.redis.xpending(queue.keys.stream, GROUP))["pending"] == 0
