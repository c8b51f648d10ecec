"""Pricing pool benchmark: ``python -m bench.pricing [--jobs 200] [--delay 0.5] [--workers 1,2,4]``;
``--fairness``: partner A floods, partner B's turnaround (``bench/pricing_fairness.py``).

200 quote jobs — 40 % exact duplicates, 20 % geometric duplicates (triangle-shuffled, vertex-
rotated, translated copies), 40 % distinct boxes from ``legacy_sim.pricing.samples`` — submitted
in a shuffled order through ``QuoteSubmitter`` (the gateway's code path minus HTTP) to a private
Redis, priced by N real ``python -m legacy_adapters.worker`` processes whose callable backend
(``legacy_sim.pricing.callable_target``) sleeps ``--delay`` s per calculation, like the legacy.

Per worker count it prints the makespan (first submission → last job done), the ideal makespan
``ceil(distinct / workers) x delay``, their ratio (target ≤ 1.15), the legacy calls made, and the
speed-up over the legacy synchronous path, which is *computed* (every job priced in turn:
jobs x delay), not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from bench import pricing_fairness
from devstack.process import ServerProcess
from devstack.redis import RedisServer
from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, SubmitSettings
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import calls_per_model, geometric_copy, submit_checked

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.15


def workload(jobs: int, seed: int = 1) -> tuple[list[bytes], int]:
    """Shuffled uploads (40 % distinct, 40 % exact, 20 % geometric duplicates) and the distinct count."""
    distinct = round(jobs * 0.4)
    sizes = [(10 + i, 15 + (i % 9), 5 + (i % 13)) for i in range(distinct)]
    uploads = [box_stl_binary(*s) for s in sizes]
    rng = random.Random(seed)
    uploads += [box_stl_binary(*rng.choice(sizes)) for _ in range(round(jobs * 0.4))]
    uploads += [geometric_copy(*rng.choice(sizes), seed=k, shift=(k * 1.5, -k, 3.25 * k))
                for k in range(jobs - len(uploads))]
    rng.shuffle(uploads)
    return uploads, distinct


async def one_run(redis_url: str, uploads: list[bytes], workers: int, delay: float,
                  tmp: Path) -> dict[str, float]:
    """Start ``workers`` processes, submit everything, wait until all jobs are done."""
    queue = PricingQueue.from_url(redis_url)
    await queue.redis.flushdb()
    await queue.ensure_group()
    log = tmp / f"calls-{workers}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRICING_LOCAL_DELAY": str(delay),
           "PRICING_CALL_LOG": str(log), "LOG_LEVEL": "WARNING"}
    procs = [ServerProcess([sys.executable, "-m", "legacy_adapters.worker", "--redis-url", redis_url,
                            "--backend", "legacy_sim.pricing.callable_target:price_model", "--name", f"w{i}"],
                           log_path=tmp / f"worker-{workers}-{i}.log", env=env) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while await queue.redis.zcard(queue.keys.workers) < workers:  # noqa: ASYNC110 (start-up, not measured)
            await asyncio.sleep(0.05)
        submitter = QuoteSubmitter(queue, SubmitSettings(backlog_bound=10_000))
        started = time.perf_counter()
        ids = [(await submit_checked(submitter, QuoteRequest(model=m, material="PLA", owner="bench"))).job_id
               for m in uploads]
        while True:
            async with queue.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(queue.keys.job(job_id), "status")
                statuses = await pipe.execute()
            if all(s == b"done" for s in statuses):
                break
            await asyncio.sleep(0.02)
        makespan = time.perf_counter() - started
    finally:
        for p in procs:
            p.stop()
        await queue.aclose()
    return {"makespan": makespan, "calls": sum(calls_per_model(log).values())}


async def main_async(args: argparse.Namespace) -> int:
    if args.fairness:
        with tempfile.TemporaryDirectory(prefix="bench-fairness-") as tmp_name:
            redis = RedisServer(Path(tmp_name) / "redis").start()
            try:
                return await pricing_fairness.run(redis.url, args, Path(tmp_name))
            finally:
                redis.stop()
    uploads, distinct = workload(args.jobs)
    legacy = args.jobs * args.delay
    print(f"# {args.jobs} jobs, {distinct} distinct models, legacy {args.delay} s per calculation; "
          f"legacy synchronous path = {args.jobs} x {args.delay} s = {legacy:.1f} s (computed)")
    print(f"{'workers':>7} {'makespan s':>10} {'ideal s':>8} {'ratio':>6} {'calls':>6} {'speed-up':>9}"
          "  verdict")
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-pricing-") as tmp_name:
        tmp = Path(tmp_name)
        redis = RedisServer(tmp / "redis").start()
        try:
            for workers in args.workers:
                r = await one_run(redis.url, uploads, workers, args.delay, tmp)
                ideal = math.ceil(distinct / workers) * args.delay
                ratio = r["makespan"] / ideal
                verdict = "PASS" if ratio <= TARGET else "FAIL"
                failed |= verdict == "FAIL"
                print(f"{workers:>7} {r['makespan']:>10.2f} {ideal:>8.2f} {ratio:>6.3f} {int(r['calls']):>6} "
                      f"{legacy / r['makespan']:>8.1f}x  {verdict} (target ratio <= {TARGET})", flush=True)
        finally:
            redis.stop()
    return 0 if not failed else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=None)
    p.add_argument("--fairness", action="store_true", help="the fairness bench (one worker count)")
    pricing_fairness.add_arguments(p)
    args = p.parse_args()
    if args.fairness:
        args.workers = (args.workers or [2])[0]
    else:
        args.workers = args.workers or [1, 2, 4]
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
