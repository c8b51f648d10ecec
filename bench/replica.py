"""The MES read replica in figures: copying it, and its lag under a bulk write.

``python -m bench.replica [--orders 1000000] [--update-share 0.1]`` — a private primary (the
``make run`` settings, durable) seeded by ``legacy_sim seed``, then:

1. ``ReplicaServer.start()`` timed (``pg_basebackup -R`` of the whole database + standby start-up),
   with the database size;
2. one bulk ``UPDATE`` of ``--update-share`` of the orders (the shape of a mass status change or
   of the kit's archive batches, in one transaction), while the sidecar's own measurement
   (``sidecar.replica_lag.ReplicaLag``) samples the lag every 0.1 s: the largest lag in bytes and
   seconds, and the time from the commit until the replica had replayed it.

Everything runs under a temporary folder and is stopped by PID. Figures: docs/mes-data.md.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from prometheus_client import REGISTRY

from devstack.postgres import PostgresServer
from devstack.replica import ReplicaServer
from sidecar.db import open_readonly_pool
from sidecar.probe_runner import ProbeRunner
from sidecar.replica_lag import ReplicaLag

NAME = "bench"


def _lag() -> tuple[float, float]:
    labels = {"replica": NAME}
    return (REGISTRY.get_sample_value("mes_replica_lag_bytes", labels) or 0.0,
            REGISTRY.get_sample_value("mes_replica_lag_seconds", labels) or 0.0)


async def _bulk_update(primary: PostgresServer, replica: ReplicaServer, share: float) -> dict[str, float]:
    pools = [await open_readonly_pool(s.dsn, instance=NAME) for s in (primary, replica)]
    lag = ReplicaLag(pools[0], pools[1], ProbeRunner(kind="mes", instance=NAME), replica_name=NAME)
    writer = await asyncpg.connect(primary.dsn)
    peak_bytes = peak_seconds = 0.0
    try:
        modulo = max(round(1 / share), 1)
        started = time.perf_counter()
        update = asyncio.create_task(writer.execute(
            f"UPDATE orders SET updated_at = now() WHERE id % {modulo} = 0"))  # noqa: S608 (an int)
        committed_at: float | None = None
        while True:
            await lag.measure()
            lag_bytes, lag_seconds = _lag()
            peak_bytes, peak_seconds = max(peak_bytes, lag_bytes), max(peak_seconds, lag_seconds)
            if committed_at is None and update.done():
                await update
                committed_at = time.perf_counter()
            elif committed_at is not None and lag_bytes == 0:
                break
            await asyncio.sleep(0.1)
        caught_up = time.perf_counter()
    finally:
        await writer.close()
        for pool in pools:
            await pool.close()
    return {"update_s": committed_at - started, "replayed_after_commit_s": caught_up - committed_at,
            "peak_lag_bytes": peak_bytes, "peak_lag_seconds": peak_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replica", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--update-share", type=float, default=0.1, help="share of orders one UPDATE touches")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mes-edge-bench-replica-") as tmp:
        primary = PostgresServer(Path(tmp) / "primary", database="mes").start()
        try:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "legacy_sim", "seed", "--dsn", primary.dsn,
                            "--orders", str(args.orders)], check=True, capture_output=True, timeout=3600)
            seeded = time.perf_counter() - t
            size = subprocess.run(["du", "-sb", str(primary.data_dir)], capture_output=True, text=True,
                                  check=True).stdout.split()[0]
            t = time.perf_counter()
            replica = ReplicaServer(primary, Path(tmp) / "replica").start()
            copied = time.perf_counter() - t
            try:
                bulk = asyncio.run(_bulk_update(primary, replica, args.update_share))
            finally:
                replica.stop()
        finally:
            primary.stop()
    rows = int(args.orders * args.update_share)
    print(f"orders {args.orders:,} (seeded in {seeded:.0f} s), data directory {int(size) / 2**20:,.0f} MiB")
    print(f"replica start (pg_basebackup -R + standby ready): {copied:.1f} s")
    print(f"bulk UPDATE of ~{rows:,} orders in one transaction: {bulk['update_s']:.1f} s on the primary; "
          f"replica replayed it {bulk['replayed_after_commit_s']:.1f} s after the commit")
    print(f"peak lag seen by the sidecar's measurement: {bulk['peak_lag_bytes'] / 2**20:,.0f} MiB, "
          f"{bulk['peak_lag_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
