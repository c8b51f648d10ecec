"""``python -m legacy_adapters.jobs``: operator commands on quote jobs.

    python -m legacy_adapters.jobs --redis-url URL requeue JOB_ID [JOB_ID …]
    python -m legacy_adapters.jobs --redis-url URL requeue --all-dead
    python -m legacy_adapters.jobs --redis-url URL dead        # list dead letters with reasons
    python -m legacy_adapters.jobs --redis-url URL show JOB_ID

Re-queue resets the attempt count and takes the normal path: a price cached meanwhile is used,
a running computation of the same model is joined, otherwise the job is queued again (if its
model is still stored; else it fails with "submit it again"). Exit 1 if any id was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from legacy_adapters.shards import ShardedQueue


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m legacy_adapters.jobs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", default=os.environ.get("PRICING_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--prefix", default=os.environ.get("PRICING_PREFIX", "pricing"))
    p.add_argument("--shards", type=int, default=int(os.environ.get("PRICING_SHARDS", "1")),
                   help="the queue's shards (as the workers' --shards)")
    sub = p.add_subparsers(dest="command", required=True)
    rq = sub.add_parser("requeue", help="put failed jobs back on the queue")
    rq.add_argument("job_ids", nargs="*")
    rq.add_argument("--all-dead", action="store_true", help="every job in the dead-letter set")
    sub.add_parser("dead", help="list the dead-letter set")
    show = sub.add_parser("show", help="print a job's record")
    show.add_argument("job_id")
    return p


async def _run(args: argparse.Namespace) -> int:
    queue = ShardedQueue.from_url(args.redis_url, prefix=args.prefix, shards=args.shards,
                                  setting="--redis-url")
    try:
        await queue.ensure_group()
        if args.command == "show":
            job = await queue.job(args.job_id)
            print(json.dumps(job, indent=2) if job else f"{args.job_id}: no such job")
            return 0 if job else 1
        if args.command == "dead":
            for job_id in await queue.dead_jobs():
                job = await queue.job(job_id) or {}
                print(f"{job_id}\t{job.get('finished_at', '')}\t{job.get('error', '(expired)')}")
            return 0
        ids = list(args.job_ids) + (await queue.dead_jobs() if args.all_dead else [])
        if not ids:
            print("nothing to re-queue (give JOB_IDs or --all-dead)", file=sys.stderr)
            return 2
        refused = 0
        for job_id in ids:
            outcome = await queue.requeue(job_id)
            refused += outcome in ("missing", "done", "no_model")
            print(f"{job_id}\t{outcome}")
        return 1 if refused else 0
    finally:
        await queue.aclose()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return asyncio.run(_run(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
