"""Fairness across partners: ``python -m bench.pricing --fairness [--flood 500] [--delay 0.1] …``.

Partner B submits 5 quotes on an idle system (its reference turnaround), then partner A floods
``--flood`` distinct models and B submits 5 more right after. Turnaround is a job's ``created_at`` →
``finished_at`` (both written by Redis scripts, ms). Printed for every mode (``fair``: the gateway's
default scheduling, ``fifo``: ``fair_window: 0``, the one stream of before): B's and A's turnaround
distributions in one run, how much of B's was waiting to start (``created_at`` → ``started_at``),
and B's p95 under the flood over its idle p95 (target ≤ 2).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from devstack.process import ServerProcess
from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, SubmitSettings
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import submit_checked

ROOT = Path(__file__).resolve().parent.parent
TARGET = 2.0


def _p(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


def _summary(values: list[float]) -> str:
    return (f"n={len(values):>3} p50={_p(values, 0.5):6.2f} p95={_p(values, 0.95):6.2f} "
            f"max={max(values):6.2f} mean={statistics.fmean(values):6.2f}")


async def _submit(submitter: QuoteSubmitter, owner: str, models: list[bytes], quantum: int) -> list[str]:
    return [(await submit_checked(submitter, QuoteRequest(model=m, material="PLA", owner=owner, tier="bronze",
                                                          weight=quantum))).job_id for m in models]


async def _turnarounds(queue: PricingQueue, ids: list[str]) -> tuple[list[float], list[float]]:
    """Seconds per job once every one is done: turnaround, and of it the wait before the (last) start."""
    while True:
        async with queue.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(queue.keys.job(job_id), "status", "created_at", "started_at", "finished_at")
            rows = await pipe.execute()
        if all(r[0] == b"done" for r in rows):
            return ([(int(r[3]) - int(r[1])) / 1000 for r in rows],
                    [(int(r[2]) - int(r[1])) / 1000 for r in rows])
        await asyncio.sleep(0.05)


async def one_mode(redis_url: str, args: argparse.Namespace, window: int, tmp: Path
                   ) -> dict[str, list[float]]:
    """Idle B, then flood A + B, with ``window`` (0: FIFO)."""
    queue = PricingQueue.from_url(redis_url)
    await queue.redis.flushdb()
    await queue.ensure_group()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRICING_LOCAL_DELAY": str(args.delay),
           "LOG_LEVEL": "WARNING"}
    procs = [ServerProcess([sys.executable, "-m", "legacy_adapters.worker", "--redis-url", redis_url,
                            "--backend", "legacy_sim.pricing.callable_target:price_model", "--name", f"w{i}",
                            "--concurrency", str(args.concurrency)],
                           log_path=tmp / f"worker-{window}-{i}.log", env=env) for i in range(args.workers)]
    for p in procs:
        p.start()
    try:
        while await queue.redis.zcard(queue.keys.workers) < args.workers:  # noqa: ASYNC110 (start-up)
            await asyncio.sleep(0.05)
        submitter = QuoteSubmitter(queue, SubmitSettings(backlog_bound=100_000, fair_window=window))
        q = args.quantum
        idle, idle_wait = await _turnarounds(queue, await _submit(
            submitter, "partner-b", [box_stl_binary(7, 7, 3 + i) for i in range(5)], q))
        flood = [box_stl_binary(10 + i, 15 + i % 9, 5 + i % 13) for i in range(args.flood)]
        flood_ids = await _submit(submitter, "partner-a", flood, q)
        b_ids = await _submit(submitter, "partner-b", [box_stl_binary(8, 8, 3 + i) for i in range(5)], q)
        b, b_wait = await _turnarounds(queue, b_ids)
        a, _a_wait = await _turnarounds(queue, flood_ids)
    finally:
        for p in procs:
            p.stop()
        await queue.aclose()
    return {"idle": idle, "b": b, "a": a, "idle_wait": idle_wait, "b_wait": b_wait}


async def run(redis_url: str, args: argparse.Namespace, tmp: Path) -> int:
    """Every mode in turn; exit 1 when fair scheduling misses the target."""
    print(f"# flood {args.flood} (partner A) + 5 (partner B), {args.workers} worker(s) x concurrency "
          f"{args.concurrency}, fair_window {args.window}, fair_quantum {args.quantum}, "
          f"legacy {args.delay} s per calculation; load average "
          f"{os.getloadavg()[0]:.1f} at start")
    failed = False
    for mode in args.modes:
        started = time.perf_counter()
        r = await one_mode(redis_url, args, args.window if mode == "fair" else 0, tmp)
        ratio = _p(r["b"], 0.95) / _p(r["idle"], 0.95)
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        failed |= mode == "fair" and verdict == "FAIL"
        print(f"[{mode}] B idle   {_summary(r['idle'])}\n[{mode}] B flood  {_summary(r['b'])}\n"
              f"[{mode}] A flood  {_summary(r['a'])}\n"
              f"[{mode}] of which waiting to start: B idle {_summary(r['idle_wait'])}\n"
              f"[{mode}]                            B flood {_summary(r['b_wait'])}\n"
              f"[{mode}] B p95 flood/idle = {ratio:.2f}  {verdict} "
              f"(target <= {TARGET}); {time.perf_counter() - started:.0f} s, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
    return 1 if failed else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--fairness`` options of ``bench.pricing``."""
    p.add_argument("--flood", type=int, default=500, help="partner A's jobs (fairness)")
    p.add_argument("--concurrency", type=int, default=2, help="per worker (fairness)")
    p.add_argument("--window", type=int, default=2, help="quotes.fair_window (fairness)")
    p.add_argument("--quantum", type=int, default=5, help="quotes.fair_quantum: jobs per turn (fairness)")
    p.add_argument("--modes", type=lambda s: s.split(","), default=["fair", "fifo"],
                   help="fair,fifo (fairness)")
