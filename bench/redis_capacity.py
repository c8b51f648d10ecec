"""What one Redis serves of the platform's command mix: ``python -m bench.redis_capacity``.

The capacity model's ``redis_ops`` (``telemetry/capacity_model.py``) is Redis's own count of
commands processed per second (``redis_commands_processed_total``; a Lua script's inner calls
count too). This bench measures that figure at saturation on a private ``redis-server`` started
as ``make run`` starts it (append-only file on), driven by ``redis-benchmark`` (C, 50 connections,
no pipelining) with each operation the platform sends:

* ``ratelimit``: ``EVALSHA`` of the gateway's multi-window script (``gateway/ratelimit/shared.py``)
  over two windows of one partner (a tier and a route), keys spread over ``--keyspace`` partners;
* ``cache_get`` / ``cache_set``: a cached order list (``--entry-bytes``, a 50-order page as
  stored: docs/redis.md) read, and written with its ``PX`` expiry;
* ``queue_xadd`` / ``queue_xreadgroup``: the pricing stream's append and a worker's read.

For each it records operations/s (redis-benchmark) and commands/s (``INFO`` deltas on the
server); the mix's commands/s is the harmonic combination with ``--mix`` (operations per 100:
:data:`DEFAULT_MIX`, or your gateway's). Plain GET/SET as ``redis-benchmark -t get,set`` sends
them run in the same session for the ratio.
Writes ``redis_ops`` into ``prometheus/capacity.yml`` with ``--write`` (then re-render the rules).
The load generator shares the machine's cores with the server: say the load average with it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.redis import RedisServer
from gateway.ratelimit.shared import MULTI_WINDOW_SCRIPT
from telemetry.capacity_model import CAPACITY_FILE, Capacity, load_capacities, write_capacities

#: operations per 100, as the gateway sends them: every partner request runs the limiter's script
#: once, a list request looks the cache up (and stores on a miss), a quote appends to the pricing
#: stream and a worker reads it. INFO commandstats cannot give this mix: it counts a script's inner
#: calls too (make run after loadtests.capacity, 12/05: EVALSHA 40,928, INCRBY 182,022, GET 54,733)
DEFAULT_MIX = {"ratelimit": 45.0, "cache_get": 40.0, "cache_set": 5.0, "queue_xadd": 5.0,
               "queue_xreadgroup": 5.0}
STREAM, GROUP = "bench:{pricing}:stream", "workers"


@dataclass(frozen=True)
class Result:
    operation: str
    ops_per_s: float  # as redis-benchmark counted requests
    commands_per_s: float  # as Redis counted them (total_commands_processed)


def operations(sha: str, entry_bytes: int) -> dict[str, list[str]]:
    """redis-benchmark argv tails, one per operation (``__rand_int__``: a key of the keyspace)."""
    windows = [f"rl:{{p:__rand_int__}}:{{{w}}}{suffix}" for w in ("tier", "route") for suffix in ("/-1", "")]
    return {
        "ratelimit": ["EVALSHA", sha, "4", *windows, "100", "1000", "6000", "60000"],
        "cache_get": ["GET", "cache:{orders}:__rand_int__"],
        "cache_set": ["SET", "cache:{orders}:__rand_int__", "x" * entry_bytes, "PX", "1000"],
        "queue_xadd": ["XADD", STREAM, "MAXLEN", "~", "100000", "*", "v", "1", "job_id", "__rand_int__"],
        "queue_xreadgroup": ["XREADGROUP", "GROUP", GROUP, "c1", "COUNT", "1", "STREAMS", STREAM, ">"],
    }


def _rps(output: str) -> float:
    """Requests/s from redis-benchmark --csv (the last row's second column)."""
    rows = [line for line in output.splitlines() if line.startswith('"') and not line.startswith('"test"')]
    if not rows:
        raise RuntimeError(f"redis-benchmark printed no result:\n{output[-500:]}")
    return float(rows[-1].split(",")[1].strip('"'))


def run_benchmark(port: int, tail: list[str], *, requests: int, clients: int, keyspace: int,
                  client: redis.Redis) -> Result:
    """One redis-benchmark run; commands/s from the server's own counter over it."""
    argv = [shutil.which("redis-benchmark") or "redis-benchmark", "-p", str(port), "-c", str(clients),
            "-n", str(requests), "-r", str(keyspace), "--csv", *tail]
    before = int(client.info("stats")["total_commands_processed"])
    began = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True).stdout
    elapsed = time.monotonic() - began
    commands = int(client.info("stats")["total_commands_processed"]) - before - 1  # minus our INFO
    return Result(tail[0].lower(), _rps(out), commands / elapsed)


def mix_capacity(results: dict[str, Result], mix: dict[str, float]) -> tuple[float, float]:
    """(operations/s, commands/s) of the mix when every operation runs at its measured rate."""
    weight = sum(mix.values())
    seconds_per_op = sum(w / results[name].ops_per_s for name, w in mix.items()) / weight
    commands_per_op = sum(w * results[name].commands_per_s / results[name].ops_per_s
                          for name, w in mix.items()) / weight
    return 1 / seconds_per_op, commands_per_op / seconds_per_op


def measure(args: argparse.Namespace, root: Path) -> tuple[dict[str, Result], dict[str, Result]]:
    server = RedisServer(root / "redis", persistent=True).start()  # as make run: append-only file
    try:
        client = redis.Redis(port=server.port)
        sha = client.script_load(MULTI_WINDOW_SCRIPT)
        assert sha == hashlib.sha1(MULTI_WINDOW_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis's id)
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        kw = {"requests": args.requests, "clients": args.clients, "keyspace": args.keyspace, "client": client}
        ops = operations(sha, args.entry_bytes)
        # the stream is filled before it is read, so every XREADGROUP returns an entry
        platform = {name: run_benchmark(server.port, ops[name], **kw) for name in ops}
        # what `redis-benchmark -t get,set` sends: 3-byte values
        plain = {"get": run_benchmark(server.port, ["GET", "key:__rand_int__"], **kw),
                 "set": run_benchmark(server.port, ["SET", "key:__rand_int__", "xxx"], **kw)}
        return platform, plain
    finally:
        server.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.redis_capacity", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=200_000, help="requests per operation (200,000)")
    p.add_argument("--clients", type=int, default=50, help="redis-benchmark connections (50)")
    p.add_argument("--keyspace", type=int, default=10_000, help="partners / cache keys (10,000)")
    p.add_argument("--entry-bytes", type=int, default=24_696, help="a cached order list (docs/redis.md)")
    p.add_argument("--mix", default=",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items()),
                   help="operation=weight,… (operations per 100; default: DEFAULT_MIX)")
    p.add_argument("--write", action="store_true", help="write redis_ops into prometheus/capacity.yml")
    p.add_argument("--capacity-file", type=Path, default=CAPACITY_FILE)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = "python -m bench.redis_capacity " + " ".join(argv if argv is not None else sys.argv[1:])
    mix = {k: float(v) for k, v in (item.split("=", 1) for item in args.mix.split(",") if item)}
    if set(mix) - set(DEFAULT_MIX):
        raise SystemExit(f"--mix: unknown operations {sorted(set(mix) - set(DEFAULT_MIX))}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="redis-capacity-") as tmp:
        platform, plain = measure(args, Path(tmp))
    load_after = os.getloadavg()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{'operation':<18} {'ops/s':>10} {'commands/s':>11}  "
          f"(redis-benchmark -c {args.clients}, no pipelining)")
    for name, r in {**platform, **{f"plain {k.upper()}": v for k, v in plain.items()}}.items():
        print(f"{name:<18} {r.ops_per_s:>10,.0f} {r.commands_per_s:>11,.0f}")
    ops, commands = mix_capacity(platform, mix)
    plain_ops = (plain["get"].ops_per_s + plain["set"].ops_per_s) / 2
    print(f"mix {mix}: {ops:,.0f} ops/s = {commands:,.0f} commands/s "
          f"({ops / plain_ops:.2f}x plain GET/SET ops/s); load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} (2 cores, shared); {when}")
    if args.write:
        mix_text = ", ".join(f"{k} {v:g}" for k, v in mix.items())
        found = Capacity(
            resource="redis_ops", value=round(commands, -2),
            source=f"{command}, {when}, load average {load_before[0]:.1f}-{load_after[0]:.1f} "
                   "on 2 shared cores",
            method=f"commands/s (Redis's own count, script calls included) one redis-server (AOF on) "
                   f"processed at saturation with the platform's mix ({mix_text} per 100 operations; "
                   f"{ops:,.0f} operations/s, {ops / plain_ops:.2f}x plain redis-benchmark GET/SET in "
                   f"the same run); the load generator shared the cores")
        capacities = load_capacities(args.capacity_file, complete=False)
        write_capacities({**capacities, "redis_ops": found}, args.capacity_file)
        print(f"redis_ops written to {args.capacity_file}: run python -m telemetry capacity-rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
