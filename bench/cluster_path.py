"""CPU per request of the cluster path alone: ``Cluster.request`` against a real nginx endpoint.

``bench.proxy`` prices the whole gateway (aiohttp server, filter chain, cluster, client) and
its per-run spread on a shared 2-core box is about ±8 %, too coarse to see a few
microseconds moved inside the cluster. This drives the cluster in-process, with nothing
else in the process: ``concurrency`` tasks each loop ``async with cluster.request("GET",
"/orders") as r: await r.read()`` against one static nginx endpoint (``bench/nginx.py``,
its own process), and divides the process's CPU time by the requests made. The figure
covers admission, balancing, the attempt and its bookkeeping, the HTTP/1.1 client and the
event loop; compare runs of the same box, not across boxes::

    .venv/bin/python -m bench.cluster_path                       # 7 rounds x 3 s, ~30 s
    .venv/bin/python -m bench.cluster_path --rounds 11 --adaptive

CPU time on a shared VM varies by ±15 % from round to round. Instructions hardly do: with
``--requests N`` each round makes exactly N requests (after 200 to warm up), so two runs
under valgrind's callgrind with different N give the instructions of one request (repeatable
to ~0.3 %)::

    for n in 1000 11000; do PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python -m bench.cluster_path --rounds 1 --requests $n 2>&1 | grep Collected; done
    # (Ir(11000) - Ir(1000)) / 10000 = instructions per request

The cluster is the one ``make bench`` configures (least request, default retries and
breaker), optionally with adaptive concurrency (``--adaptive``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.nginx import nginx_command, static_endpoint_config
from bench.processes import ManagedProcess, free_ports
from gateway.upstreams.cluster import Cluster
from gateway.upstreams.config import AdaptiveConcurrencyConfig, ClusterConfig


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_path", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds; the median is reported")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per round instead of --duration (for instruction counts)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--adaptive", action="store_true", help="with adaptive concurrency on the cluster")
    return parser.parse_args(argv)


async def _round(cluster: Cluster, concurrency: int, duration: float, requests: int) -> tuple[int, float]:
    """(requests, CPU seconds of this process) over ``duration`` seconds (or ``requests``) of
    closed-loop load."""
    loop = asyncio.get_running_loop()
    stop_at = 0.0
    left = 0
    done = 0

    async def client() -> None:
        nonlocal done, left
        while loop.time() < stop_at and left:
            left -= 1
            async with cluster.request("GET", "/orders", headers={"Accept": "application/json"},
                                       body=None) as response:
                await response.read()
            done += 1

    stop_at, left = loop.time() + (1e9 if requests else 0.5), 200  # warm-up: connections, caches
    await asyncio.gather(*(client() for _ in range(concurrency)))
    done = 0
    cpu = time.process_time()
    stop_at, left = loop.time() + (1e9 if requests else duration), requests or -1
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done, time.process_time() - cpu


async def _measure(url: str, args: argparse.Namespace) -> list[float]:
    adaptive = AdaptiveConcurrencyConfig() if args.adaptive else None
    cluster = Cluster(ClusterConfig(name="bench", endpoints=(url,), balancer="least_request",
                                    adaptive_concurrency=adaptive))
    await cluster.start()
    per_request: list[float] = []
    try:
        for n in range(1, args.rounds + 1):
            requests, cpu = await _round(cluster, args.concurrency, args.duration, args.requests)
            per_request.append(cpu / requests * 1e6)
            print(f"[round {n}/{args.rounds}] {requests:,} requests  "
                  f"{per_request[-1]:.1f} µs CPU/request", flush=True)
    finally:
        await cluster.aclose()
    return per_request


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    print("command:", " ".join([sys.executable, "-m", "bench.cluster_path", *(argv or sys.argv[1:])]))
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory(prefix="cluster-path-") as tmp:
        workdir = Path(tmp)
        argv = nginx_command(config=static_endpoint_config(name="endpoint", port=port, workdir=workdir),
                             name="endpoint", workdir=workdir)
        endpoint = ManagedProcess("endpoint", argv, workdir)
        endpoint.start()
        try:
            endpoint.wait_http_ok(port, "/healthz", timeout=10.0)
            per_request = uvloop.run(_measure(f"http://127.0.0.1:{port}", args))
        finally:
            endpoint.stop()
    print(f"median {statistics.median(per_request):.1f} µs CPU/request over {args.rounds} rounds "
          f"(min {min(per_request):.1f}, max {max(per_request):.1f}); concurrency {args.concurrency}, "
          f"adaptive concurrency {'on' if args.adaptive else 'off'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
