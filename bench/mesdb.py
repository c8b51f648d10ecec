"""The MES database kit, before and after, side by side in one run.

    .venv/bin/python -m bench.mesdb                         # 1,000,000 orders
    .venv/bin/python -m bench.mesdb --orders 1000000 10000000 --repeat 20

Per size, in a temp dir: PostgreSQL (pg_stat_statements preloaded; fsync off, like the tests), seeded
by ``legacy_sim seed`` (3,000 active orders, the rest archived), one real legacy MES on it. It times
the operators' list calls through the MES (HTTP, nothing cached in front: what a gateway cache miss
costs the MES), the legacy's count statement, the sidecar's probe cycle and ``make run``'s
cache-miss path (the active-status and unfiltered lists through a real gateway → sidecar → the same
MES, no cache on the route: ``bench/mesdb_gateway.py``), with the gateway + sidecar overhead over
MES-direct; then ``mesdb apply`` and ``mesdb split`` run while a steady client loop and a steady wrk
load (bench/mes_migration.lua, 20 requests/s; p50/p95 against the same load for 10 s before each
step) use the MES (failed requests counted), the MES is restarted (its new sessions get ``plan_cache_mode =
force_custom_plan``), and everything is timed again. Prints both columns and the p95 ratio; results
in ``bench/results/mesdb-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.mes_wrk import MesLoad, wrk_load
from bench.mesdb_calls import SteadyLoad, Timing, measure
from bench.mesdb_gateway import gateway_path, measure_gateway, overhead
from devstack import PostgresServer, free_port
from devstack.ports import wait_for_port
from devstack.process import ServerProcess
from legacy_sim.seed import seed
from mesdb import split, tuning

ROOT = Path(__file__).resolve().parent.parent
ACTIVE = 3000
#: seconds of wrk on the MES before the migration (its latency without the kit at work)
WRK_BASELINE_S = 10


@contextmanager
def legacy_mes(dsn: str, logs: Path) -> Iterator[str]:
    """One legacy MES process on ``dsn``; yields its URL, stopped by PID."""
    port = free_port()
    proc = ServerProcess(
        [
            sys.executable,
            "-m",
            "legacy_sim",
            "mes",
            "--port",
            str(port),
            "--dsn",
            dsn,
            "--price-delay",
            "0",
            "--statement-timeout",
            "120",
        ],
        log_path=logs / f"mes-{port}.log",
    )
    proc.start()
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


async def _under_load(
    mes_url: str, step: Any, wrk_args: dict[str, Any]
) -> tuple[Any, float, SteadyLoad, MesLoad]:
    """Run the blocking ``step`` in a thread while the steady loop and a steady wrk load
    (bench/mes_wrk.py) use the MES."""
    load, stop = SteadyLoad(mes_url), asyncio.Event()
    with wrk_load(mes_url, **wrk_args) as during:
        task = asyncio.create_task(load.run(stop))
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(step)
        finally:
            stop.set()
            await task
        seconds = time.perf_counter() - started
    return result, seconds, load, during[0]


def _wrk_args(dsn: str) -> dict[str, Any]:
    """Orders the split will archive (read by id) and one CRM order among them (redelivered)."""
    with psycopg.connect(dsn) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM orders WHERE status IN ('CLOSED', 'CANCELLED') "
                "AND status_changed_at < now() - interval '60 days' ORDER BY id LIMIT 200"
            ).fetchall()
        ]
        ref = conn.execute(
            "SELECT external_ref FROM orders WHERE source = 'crm' AND status = 'CLOSED' "
            "AND status_changed_at < now() - interval '60 days' LIMIT 1"
        ).fetchone()
    return {"archived_ids": ids, "crm_ref": ref[0] if ref else "none"}


def _migrate(dsn: str, what: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return tuning.apply(conn, measured=False) if what == "apply" else split.split(conn)


def _sizes(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_relation_size('mesdb_orders_active_idx'), pg_table_size('orders'), "
            "pg_table_size('orders_archive'), (SELECT count(*) FROM ONLY orders), "
            "(SELECT count(*) FROM orders_archive)"
        ).fetchone()
    assert row is not None
    return dict(
        zip(
            ("hot_index_bytes", "hot_table_bytes", "archive_bytes", "hot_rows", "archived_rows"),
            row,
            strict=True,
        )
    )


async def _through_gateway(mes_url: str, repeat: int, logs: Path) -> tuple[list[Any], list[Any]]:
    """``make run``'s cache-miss path: gateway → sidecar → this MES, alternating with MES-direct
    calls (bench/mesdb_gateway.py); as dicts, like the other timings."""
    print("   … through gateway + sidecar (no cache), alternating with MES-direct …", flush=True)
    with gateway_path(mes_url, logs) as (gateway_url, admin_url):
        through, direct = await measure_gateway(gateway_url, admin_url, mes_url, repeat=repeat)
    return [dataclasses.asdict(t) for t in through], [dataclasses.asdict(t) for t in direct]


async def run_size(server: PostgresServer, orders: int, repeat: int, logs: Path) -> dict[str, Any]:
    name = f"bench_{orders}"
    with psycopg.connect(server.dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = server.dsn.rsplit("/", 1)[0] + f"/{name}"
    print(f"\n== {orders:,} orders: seeding …", flush=True)
    seeded = await seed(dsn, orders=orders, active=ACTIVE)
    result: dict[str, Any] = {
        "orders": orders,
        "seed_s": seeded.seconds_orders + seeded.seconds_history + seeded.seconds_analyze,
    }
    with psycopg.connect(dsn) as conn:
        partner = conn.execute(
            "SELECT partner_id FROM orders WHERE partner_id IS NOT NULL LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
    wrk_args = _wrk_args(dsn)
    with legacy_mes(dsn, logs) as mes_url:
        print("   before: timing …", flush=True)
        before = await measure(mes_url, dsn, repeat=repeat, partner=partner)
        result["before_gateway"], result["before_paired"] = await _through_gateway(mes_url, repeat, logs)
        print(f"   wrk on the MES for {WRK_BASELINE_S} s (before apply) …", flush=True)
        with wrk_load(mes_url, **wrk_args) as baseline:
            await asyncio.sleep(WRK_BASELINE_S)
        print("   mesdb apply under load …", flush=True)
        _, result["apply_s"], apply_load, apply_wrk = await _under_load(
            mes_url, lambda: _migrate(dsn, "apply"), wrk_args
        )
    with legacy_mes(dsn, logs) as mes_url:  # new sessions: the database's plan_cache_mode
        print(f"   wrk on the MES for {WRK_BASELINE_S} s (before the split) …", flush=True)
        with wrk_load(mes_url, **wrk_args) as before_split:
            await asyncio.sleep(WRK_BASELINE_S)
        print("   mesdb split under load …", flush=True)
        moved, result["split_s"], split_load, split_wrk = await _under_load(
            mes_url, lambda: _migrate(dsn, "split"), wrk_args
        )
    result["wrk"] = {
        "before apply": dataclasses.asdict(baseline[0]),
        "during apply": dataclasses.asdict(apply_wrk),
        "before split (indexes in place)": dataclasses.asdict(before_split[0]),
        "during split": dataclasses.asdict(split_wrk),
    }
    with legacy_mes(dsn, logs) as mes_url:
        print("   after: timing …", flush=True)
        after = await measure(mes_url, dsn, repeat=repeat, partner=partner)
        result["after_gateway"], result["after_paired"] = await _through_gateway(mes_url, repeat, logs)
    result |= {
        "moved_rows": moved.rows,
        "batches": moved.batches,
        **_sizes(dsn),
        "load_requests": apply_load.requests + split_load.requests,
        "load_failures": apply_load.failures
        + split_load.failures
        + [f"wrk {k}: {v['failures']} failed" for k, v in result["wrk"].items() if v["failures"]],
        "before": [dataclasses.asdict(t) for t in before],
        "after": [dataclasses.asdict(t) for t in after],
    }
    print(report(result), flush=True)
    return result


def _row(b: Timing | dict[str, Any], a: dict[str, Any]) -> str:
    b = b if isinstance(b, dict) else dataclasses.asdict(b)
    ratio = b["p95_ms"] / a["p95_ms"] if a["p95_ms"] else float("inf")
    return (
        f"  {b['name']:<44} {b['p50_ms']:>9.2f} {b['p95_ms']:>9.2f}   {a['p50_ms']:>8.2f} {a['p95_ms']:>8.2f}"
        f"   {ratio:>8.1f}x"
    )


def report(r: dict[str, Any]) -> str:
    lines = [
        f"\n{r['orders']:,} orders (seeded in {r['seed_s']:.1f} s): apply {r['apply_s']:.1f} s, split "
        f"{r['split_s']:.1f} s ({r['moved_rows']:,} orders in {r['batches']} verified batches); "
        f"{r['load_requests']:,} MES requests meanwhile, {len(r['load_failures'])} failed",
        f"  hot index {r['hot_index_bytes'] / 2**10:,.0f} KiB = "
        f"{100 * r['hot_index_bytes'] / (r['hot_table_bytes'] + r['archive_bytes']):.3f} % of the orders "
        f"tables; hot table {r['hot_rows']:,} rows, archive {r['archived_rows']:,} rows",
    ]
    lines += [
        f"  wrk on the MES ({name}, {w['requests']:,} requests in {w['seconds']:.0f} s, "
        f"{w['failures']} failed): p50 {w['p50_ms']:.1f} ms, p95 {w['p95_ms']:.1f} ms"
        for name, w in r.get("wrk", {}).items()
    ]
    lines += [
        f"  {'call (ms)':<44} {'before p50':>9} {'p95':>9}   {'after p50':>8} {'p95':>8}   p95 ratio",
    ]
    lines += [_row(b, a) for b, a in zip(r["before"], r["after"], strict=True)]
    lines += [_row(b, a) for b, a in zip(r["before_gateway"], r["after_gateway"], strict=True)]
    head = f"{'before p50':>9} {'p95':>9}   {'after p50':>8} {'p95':>8}"
    lines.append(f"  {'gateway + sidecar overhead, paired (ms)':<44} {head}")
    paired = zip(
        overhead(r["before_gateway"], r["before_paired"]),
        overhead(r["after_gateway"], r["after_paired"]),
        strict=True,
    )
    for (call, b50, b95), (_, a50, a95) in paired:
        lines.append(f"  {'+ ' + call:<44} {b50:>9.2f} {b95:>9.2f}   {a50:>8.2f} {a95:>8.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mesdb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per measured call (20)")
    args = parser.parse_args()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-mesdb-") as tmp,
        PostgresServer(
            Path(tmp) / "pg",
            fast=True,
            database="postgres",
            settings={"shared_preload_libraries": "pg_stat_statements"},
        ) as server,
    ):
        for orders in args.orders:
            results.append(asyncio.run(run_size(server, orders, args.repeat, Path(tmp))))
    out = ROOT / "bench" / "results" / f"mesdb-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out.relative_to(ROOT)}")
    return 0 if all(not r["load_failures"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
