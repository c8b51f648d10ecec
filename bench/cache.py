"""Cache benchmark: the operators' dashboard through the gateway, cache on vs off, in one run.

    .venv/bin/python -m bench.cache                       # 1,000,000 orders, 60 s per variant
    .venv/bin/python -m bench.cache --orders 100000 --duration 20

Starts in a temp dir: PostgreSQL (seeded with ``python -m legacy_sim seed``), Redis, one legacy
MES, its sidecar (order-change events: proxy + database poller) and, per variant, one gateway
process. Prints p50/p95 latency, throughput, MES database transactions, MES requests from the
gateway and stale reads for both variants, then the ratios and the verdicts. Method and caveats:
``bench/README.md`` (section *Cache benchmark*). Results: ``bench/results/cache-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from bench.cache_workload import ACTIVE, run_workload
from devstack import PostgresServer, RedisServer, free_port
from devstack.ports import wait_for_port
from devstack.postgres import pg_bin
from devstack.process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
_UPSTREAM = re.compile(r'^gateway_upstream_requests_total\{[^}]*cluster="mes"[^}]*\} ([0-9.e+]+)$', re.M)
_CACHE = re.compile(r'^gateway_cache_requests_total\{[^}]*result="(\w+)"[^}]*\} ([0-9.e+]+)$', re.M)


def _python(name: str, args: list[str], workdir: Path) -> ServerProcess:
    proc = ServerProcess([sys.executable, *args], log_path=workdir / f"{name}.log")
    proc.start()
    return proc


def _gateway_config(workdir: Path, sidecar: str, redis_url: str, *, cache: bool) -> dict[str, Any]:
    route: dict[str, Any] = {"name": "orders", "listener": "internal", "prefix": "/orders",
                             "methods": ["GET", "POST"], "cluster": "mes"}
    top: dict[str, Any] = {}
    if cache:
        route["cache"] = {"ttl": 30, "stale_while_revalidate": 10, "stale_if_error": 60,
                          "key_params": {"status": None, "page": 1, "per_page": 50}}
        top["cache"] = {"backend": "redis", "redis_url": redis_url}
    return {"admin": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"access_log": str(workdir / f"gateway-{cache}-access.log")},
            "listeners": {"internal": {"host": "127.0.0.1", "port": free_port(), "trust_forwarded": True}},
            # no active health check: an overloaded MES fails /healthz, and a gateway answering
            # 503 no-healthy-upstream would make the cache-off variant look cheap for the MES
            "clusters": {"mes": {"endpoints": [sidecar], "retry": {"attempts": 0},
                                 "timeouts": {"connect": 1.0, "per_try": 60.0, "overall": 60.0},
                                 "breaker": {"max_requests": 1024, "max_pending": 1024}}},
            "routes": [route], **top}


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback URL we built)
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def _scrape(admin: str) -> tuple[float, dict[str, float]]:
    with urllib.request.urlopen(f"{admin}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    results: dict[str, float] = {}
    for result, value in _CACHE.findall(text):
        results[result] = results.get(result, 0.0) + float(value)
    return sum(float(v) for v in _UPSTREAM.findall(text)), results


#: The MES's list and count statements (legacy_sim/mes/orders_repo.py): what an operator's read costs.
_LIST_QUERIES = "SELECT % FROM orders WHERE ($1::text IS NULL OR status = $1)%"


async def _db_counters(dsn: str) -> tuple[int, int, int]:
    """(MES list+count statements, all statements, committed transactions) in database ``mes``."""
    await asyncio.sleep(1.5)  # statistics are flushed by backends at most every second
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(calls) FILTER (WHERE query LIKE $1), 0) AS lists, "
            "coalesce(sum(calls), 0) AS stmts, "
            "(SELECT xact_commit FROM pg_stat_database WHERE datname = 'mes') AS xacts "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'mes'",
            _LIST_QUERIES)
        return int(row["lists"]), int(row["stmts"]), int(row["xacts"])
    finally:
        await conn.close()


def _with_statement_stats(pg: PostgresServer) -> None:
    """Restart PostgreSQL with pg_stat_statements loaded (counts every statement per query text)."""
    psql = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", "mes", "-qc"]
    subprocess.run([*psql, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"], check=True,
                   capture_output=True)
    pg.stop()
    pg.start()
    subprocess.run([*psql, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"], check=True,
                   capture_output=True)


async def _active_orders(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders WHERE status = ANY($1::text[])",
                                       list(ACTIVE)))
    finally:
        await conn.close()


async def _variant(args: argparse.Namespace, workdir: Path, dsn: str, mes: str, sidecar: str,
                   redis_url: str, *, cache: bool, per_minute: float) -> dict[str, Any]:
    cfg = _gateway_config(workdir, sidecar, redis_url, cache=cache)
    path = workdir / f"gateway-{'on' if cache else 'off'}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw = _python(f"gateway-{'on' if cache else 'off'}",
                 ["-m", "gateway", "--config", str(path), "--workers", "1"], workdir)
    admin = f"http://127.0.0.1:{cfg['admin']['port']}"
    try:
        await asyncio.to_thread(_wait_http, f"{admin}/readyz")
        internal = f"http://127.0.0.1:{cfg['listeners']['internal']['port']}"
        db0, (up0, _) = await _db_counters(dsn), _scrape(admin)
        started = time.monotonic()
        out = await run_workload(gateway=internal, mes=mes, operators=args.operators,
                                 interval=args.interval, duration=args.duration,
                                 changes_per_minute=per_minute)
        elapsed = time.monotonic() - started
        db1, (up1, results) = await _db_counters(dsn), _scrape(admin)
    finally:
        gw.stop()
    return {**out.summary(elapsed), "seconds": elapsed, "mes_list_queries": db1[0] - db0[0],
            "mes_db_statements": db1[1] - db0[1], "mes_db_transactions": db1[2] - db0[2],
            "mes_requests_from_gateway": up1 - up0, "cache_results": results}


def _report(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    on, off = variants["cache-on"], variants["cache-off"]
    print(f"\n{'variant':<10} {'reqs':>6} {'err':>4} {'req/s':>7} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"
          f" {'list qs':>8} {'all stmts':>9} {'xacts':>6} {'MES reqs':>9} {'checked':>8} {'stale':>6}")
    for name, v in variants.items():
        print(f"{name:<10} {v['requests']:>6} {v['errors']:>4} {v['throughput_rps']:>7.1f}"
              f" {v['p50_ms']:>9.2f} {v['p95_ms']:>9.2f} {v['p99_ms']:>9.2f} {v['mes_list_queries']:>8}"
              f" {v['mes_db_statements']:>9} {v['mes_db_transactions']:>6}"
              f" {v['mes_requests_from_gateway']:>9.0f} {v['orders_checked']:>8} {v['stale_reads']:>6}")
    ratios = {"p50_off_over_on": off["p50_ms"] / on["p50_ms"],
              "p95_off_over_on": off["p95_ms"] / on["p95_ms"],
              "list_queries_saved": 1 - on["mes_list_queries"] / max(1, off["mes_list_queries"]),
              "db_statements_saved": 1 - on["mes_db_statements"] / max(1, off["mes_db_statements"]),
              "mes_requests_saved": 1 - on["mes_requests_from_gateway"]
              / max(1, off["mes_requests_from_gateway"])}
    print(f"cache results (on): {on['cache_results']}")
    print("ratios: " + ", ".join(f"{k}={v:.3f}" for k, v in ratios.items()))
    verdicts = {"p95 >= 20x lower": ratios["p95_off_over_on"] >= 20,
                ">= 90% fewer MES list queries": ratios["list_queries_saved"] >= 0.9,
                "zero stale reads": on["stale_reads"] == 0 and on["orders_checked"] > 0}
    for name, ok in verdicts.items():
        print(f"VERDICT {name}: {'PASS' if ok else 'FAIL'}")
    return {"ratios": ratios, "verdicts": verdicts}


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        workdir = Path(tmp)
        pg = PostgresServer(workdir / "postgres", fast=True, database="mes").start()
        _with_statement_stats(pg)
        redis = RedisServer(workdir / "redis").start()
        procs: list[ServerProcess] = []
        try:
            t0 = time.monotonic()
            await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "legacy_sim", "seed", "--dsn",
                                    pg.dsn, "--orders", str(args.orders)], check=True, cwd=ROOT,
                                    capture_output=True)
            print(f"seeded {args.orders} orders in {time.monotonic() - t0:.1f} s", flush=True)
            mes_port, sc_port, sc_admin = free_port(), free_port(), free_port()
            procs.append(_python("mes", ["-m", "legacy_sim", "mes", "--port", str(mes_port), "--dsn", pg.dsn,
                                         "--pool-max", "10"], workdir))
            wait_for_port(mes_port, timeout=60)
            procs.append(_python("sidecar", [
                "-m", "sidecar", "--kind", "mes", "--upstream", f"http://127.0.0.1:{mes_port}",
                "--listen", f"127.0.0.1:{sc_port}", "--admin", f"127.0.0.1:{sc_admin}", "--dsn", pg.dsn,
                "--redis-url", redis.url, "--history-poll-interval", str(args.history_poll_interval),
                "--access-log", str(workdir / "sidecar-access.log")], workdir))
            wait_for_port(sc_port, timeout=30)
            active = await _active_orders(pg.dsn)
            per_minute = max(1.0, active * args.change_percent / 100)
            print(f"{active} active orders → {per_minute:.0f} changes/min; {args.operators} operators every "
                  f"{args.interval} s; {args.duration} s per variant", flush=True)
            variants = {}
            for name, cache in (("cache-on", True), ("cache-off", False)):
                variants[name] = await _variant(args, workdir, pg.dsn, f"http://127.0.0.1:{mes_port}",
                                                f"http://127.0.0.1:{sc_port}", redis.url, cache=cache,
                                                per_minute=per_minute)
                print(f"{name}: done", flush=True)
            summary = _report(variants)
        finally:
            for proc in reversed(procs):
                proc.stop()
            redis.stop()
            pg.stop()
    out = ROOT / "bench" / "results" / f"cache-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv, "settings": vars(args), "variants": variants, **summary},
                              indent=2, default=str))
    print(f"results: {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--operators", type=int, default=100)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between an operator's refreshes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per variant")
    parser.add_argument("--change-percent", type=float, default=1.0,
                        help="%% of active orders changed per minute")
    parser.add_argument("--history-poll-interval", type=float, default=0.2, help="sidecar DB poller (s)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
