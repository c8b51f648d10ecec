"""Helpers shared by the pricing tests: worker processes, models, call-log counting."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from stl import mesh as stl_mesh

from devstack.process import ServerProcess
from gateway.quotes.model_check import StlLimits, model_fingerprint
from legacy_adapters.queue import PricingQueue
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, Submission
from legacy_sim.pricing.samples import box_stl_binary, box_triangles

ROOT = Path(__file__).parents[3]
LOCAL = "legacy_sim.pricing.callable_target:price_model"


async def submit_checked(submitter: QuoteSubmitter, req: QuoteRequest) -> Submission:
    """What the gateway does: the two queue steps, the model checked between them (here on a thread)."""
    async with submitter.submission(req) as pending:
        known = await pending.known()
        if known is not None:
            return known
        fp = await asyncio.to_thread(model_fingerprint, req.model, material=req.material,
                                     rules_version=submitter.settings.rules_version, limits=StlLimits())
        return await pending.enqueue(fp)


def stl_of(triangles: np.ndarray) -> bytes:
    """A binary STL of (n, 3, 3) triangles."""
    data = np.zeros(len(triangles), dtype=stl_mesh.Mesh.dtype)
    data["vectors"] = triangles
    return b"mes-edge test".ljust(80, b" ") + np.uint32(len(triangles)).tobytes() + data.tobytes()


def geometric_copy(x: float, y: float, z: float, *, seed: int = 7, shift: tuple[float, float, float] = (
        12.5, -3.25, 40.0)) -> bytes:
    """The box ``x*y*z`` with triangles shuffled, vertices rotated and the whole mesh translated."""
    rng = np.random.default_rng(seed)
    tris = box_triangles(x, y, z)[rng.permutation(12)]
    tris = np.stack([np.roll(t, int(rng.integers(3)), axis=0) for t in tris]) + np.array(shift)
    return stl_of(tris)


def distinct_models(n: int) -> list[bytes]:
    """``n`` different boxes (binary STL)."""
    return [box_stl_binary(10 + i, 20, 5 + (i % 7)) for i in range(n)]


def calls_per_model(log: Path) -> collections.Counter[str]:
    """Legacy calls recorded by ``local_pricing`` (``PRICING_CALL_LOG``), per model sha256."""
    if not log.exists():
        return collections.Counter()
    return collections.Counter(line.split()[0] for line in log.read_text().splitlines() if line)


@contextmanager
def worker_processes(redis_url: str, log_dir: Path, count: int, *, backend: str = LOCAL,
                     env: dict[str, str] | None = None, extra: tuple[str, ...] = (),
                     concurrency: int = 1, env_of: Mapping[int, Mapping[str, str]] | None = None
                     ) -> Iterator[list[ServerProcess]]:
    """``count`` real ``python -m legacy_adapters.worker`` processes, stopped by PID at the end;
    ``env_of[i]``: more environment for worker ``w{i}`` only (e.g. a victim whose calls last)."""
    started: list[ServerProcess] = []
    try:
        for i in range(count):
            argv = [sys.executable, "-m", "legacy_adapters.worker", "--redis-url", redis_url,
                    "--backend", backend, "--concurrency", str(concurrency), "--name", f"w{i}", *extra]
            proc = ServerProcess(argv, log_path=log_dir / f"worker-{i}.log",
                                 env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {}),
                                      **(env_of or {}).get(i, {})})
            proc.start()
            started.append(proc)
        yield started
    finally:
        for proc in started:
            proc.stop(timeout=15)


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms until true; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.05)


async def sigkill_busy_worker_then_finish(queue: PricingQueue | ShardedQueue, job_ids: list[str],
                                          workers: list[ServerProcess], timeout: float
                                          ) -> list[dict[str, str]]:
    """SIGKILL worker ``w0`` (``workers[0]``) while it runs one of ``job_ids``, wait until every job
    is done; returns the jobs' fields."""

    async def jobs() -> list[dict[str, str]]:
        return [await queue.job(j) or {} for j in job_ids]

    async def victim_is_busy() -> bool:
        return any(j.get("status") == "running" and j.get("worker") == "w0" for j in await jobs())

    async def all_done() -> bool:
        return all(j.get("status") == "done" for j in await jobs())

    await wait_until(victim_is_busy, timeout, "worker w0 running a job")
    assert workers[0].proc is not None
    workers[0].proc.send_signal(signal.SIGKILL)  # no chance to hand anything back
    workers[0].proc.wait(5)
    await wait_until(all_done, timeout, f"all {len(job_ids)} jobs done")
    return await jobs()
