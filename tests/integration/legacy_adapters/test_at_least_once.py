"""Nothing lost: real worker processes, one SIGKILLed mid-job; every job finishes, recorded once."""

from __future__ import annotations

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


async def test_sigkill_mid_job_loses_nothing_and_records_each_job_once(
        redis_url: str, queue: PricingQueue, submitter: QuoteSubmitter, tmp_path: Path) -> None:
    models = distinct_models(50)
    job_ids = [(await submit(submitter, m)).job_id for m in models]
    assert await queue.redis.xlen(queue.keys.stream) == 50
    log = tmp_path / "calls.log"
    env = {"PRICING_LOCAL_DELAY": "0.15", "PRICING_CALL_LOG": str(log)}
    with worker_processes(redis_url, tmp_path, 2, env=env, concurrency=2,
                          extra=("--visibility-timeout", "1.5", "--retry-base", "0.1")) as workers:

        async def victim_is_busy() -> bool:
            jobs = [await queue.job(j) for j in job_ids]
            return any(j and j["status"] == "running" and j.get("worker") == "w0" for j in jobs)

        await wait_until(victim_is_busy, 20, "worker w0 running a job")
        assert workers[0].proc is not None
        workers[0].proc.send_signal(signal.SIGKILL)  # no chance to hand anything back
        workers[0].proc.wait(5)

        async def all_done() -> bool:
            jobs = [await queue.job(j) for j in job_ids]
            return all(j is not None and j["status"] == "done" for j in jobs)

        await wait_until(all_done, 40, "all 50 jobs done")
    jobs = [await queue.job(j) for j in job_ids]
    assert [j["completions"] for j in jobs if j] == ["1"] * 50
    calls = calls_per_model(log)
    assert len(calls) == 50  # every distinct model priced
    # at least once: only the jobs w0 had in hand when it died may have been priced twice
    assert sum(calls.values()) - 50 <= 2
    assert max(j.get("attempts", "0") for j in jobs if j) >= "2"  # someone reclaimed a job
    assert await queue.redis.xlen(queue.keys.stream) == 0
    assert (await queue.redis.xpending(queue.keys.stream, GROUP))["pending"] == 0
