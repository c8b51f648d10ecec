"""What the shared state costs in Redis memory: ``python -m bench.redis_memory [--jobs 200]``.

* a cached order list: the gateway's cache entry (``gateway/cache/entry.py``, as stored) of a MES
  list page of ``DEFAULT_PER_PAGE`` (50) orders shaped like the MES stand-in's ``GET /orders``,
  measured with ``MEMORY USAGE`` (the key's value + its overhead);
* a pricing job: ``--jobs`` distinct models submitted through ``QuoteSubmitter`` (the gateway's
  path minus HTTP) into a private Redis: ``used_memory`` grown per queued job (record, stream
  entry, in-flight and model keys), of which the stored model (``MEMORY USAGE`` of the model
  keys; a real upload is its STL's size), and the job hash that stays once the job is done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import orjson
from multidict import CIMultiDict

from devstack.redis import RedisServer
from gateway.cache.entry import build_entry
from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, SubmitSettings
from legacy_sim.mes.params import DEFAULT_PER_PAGE
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import submit_checked


def order(n: int) -> dict[str, object]:
    """One order as the MES stand-in lists it (``orders_repo.order_json``)."""
    stamp = f"2026-12-05T07:{n % 60:02d}:00.123456+00:00"
    return {"id": 1_000_000 + n, "source": "crm", "external_ref": f"CRM-{n:08d}", "partner_id": "acme",
            "customer": f"Customer {n} GmbH", "material": "PETG", "quantity": 1 + n % 40,
            "model_name": f"bracket-{n}.stl", "model_sha256": f"{n:064x}", "price_eur": 118.4 + n,
            "status": "MANUFACTURING_STARTED", "created_at": stamp, "updated_at": stamp,
            "status_changed_at": stamp}


async def _usage(queue: PricingQueue, key: str | bytes) -> int:
    return int(await queue.redis.memory_usage(key, samples=0) or 0)


async def cached_list(url: str) -> tuple[int, int]:
    """(body bytes, MEMORY USAGE bytes) of one cached list page."""
    body = orjson.dumps({"items": [order(n) for n in range(DEFAULT_PER_PAGE)], "page": 1,
                         "per_page": DEFAULT_PER_PAGE, "total": 3000})
    entry = build_entry(CIMultiDict({"Content-Type": "application/json; charset=utf-8"}), body, (1, 4, 2, 9))
    queue = PricingQueue.from_url(url)  # any redis-py client of the spec
    try:
        key = "cache:e:orders:acme:/partner/v1/orders?status=MANUFACTURING_STARTED&page=1"
        await queue.redis.set(key, entry.encode(), px=60_000)
        return len(body), await _usage(queue, key)
    finally:
        await queue.aclose()


async def pricing_jobs(url: str, jobs: int) -> tuple[float, float, float]:
    """(used_memory per queued job, of which the model, job hash alone) in bytes."""
    queue = PricingQueue.from_url(url)
    try:
        await queue.ensure_group()
        before = int((await queue.redis.info("memory"))["used_memory"])
        submitter = QuoteSubmitter(queue, SubmitSettings(backlog_bound=100_000))
        ids = [(await submit_checked(submitter, QuoteRequest(model=box_stl_binary(10 + i, 100 + i % 7, 5),
                                                              material="PLA", owner="bench"))).job_id
               for i in range(jobs)]
        after = int((await queue.redis.info("memory"))["used_memory"])
        models = [k async for k in queue.redis.scan_iter(match=queue.keys.model("*"))]
        model_bytes = sum([await _usage(queue, k) for k in models])
        job_bytes = sum([await _usage(queue, queue.keys.job(j)) for j in ids])
        return (after - before) / jobs, model_bytes / jobs, job_bytes / jobs
    finally:
        await queue.aclose()


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-redis-memory-") as tmp, RedisServer(Path(tmp)) as redis:
        body, usage = await cached_list(redis.url)
        print(f"cached list ({DEFAULT_PER_PAGE} orders, body {body:,} bytes): MEMORY USAGE {usage:,} bytes")
        per_job, model, record = await pricing_jobs(redis.url, args.jobs)
        print(f"pricing job ({args.jobs} queued, distinct 12-triangle box models of 684 bytes): used_memory "
              f"+{per_job:,.0f} bytes per job, of which the stored model {model:,.0f}; the job hash "
              f"that stays after completion (job_ttl) {record:,.0f} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args(argv)
    print("command:", " ".join([sys.executable, "-m", "bench.redis_memory", *(argv or sys.argv[1:])]))
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
