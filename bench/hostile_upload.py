"""Hostile quote uploads against a real gateway process (issue 12, point 6; docs/pricing.md).

    .venv/bin/python -m bench.hostile_upload [--tree PATH] [--upload-mib 50] [--gets 4] [--repeat 5]

Starts a Redis and ``python -m gateway`` (the code under ``--tree``, default this checkout: run
it with ``--tree /work/base`` for the code before the change) with the quote route on the
internal listener (``max_body_bytes`` 50 MiB, every other ``quotes:`` key at its default), then:

1. **Pathological ASCII** — ``solid facet`` + ``--upload-mib`` MiB of newlines, posted while
   ``--gets`` clients loop on a cheap ``GET /quotes/{unknown id}`` (404 after one Redis read);
   ``--repeat`` uploads one after the other (from a thread: the GET clients' loop never waits for
   the upload). Prints the uploads' status and times, and p50/p99/max of the GETs before and during it.
2. **Four maximum-size binary STLs** at once (distinct, ~1 M triangles, 50 MiB each). Prints the
   statuses and time, and the peak RSS of the gateway process (and, separately, of its
   model-check child processes) sampled every 10 ms, against its idle RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import yaml

from devstack import RedisServer
from devstack.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 50 << 20
CHEAP = "/quotes/" + "0" * 32


def _config(tmp: Path, redis_url: str) -> dict[str, object]:
    route = {"name": "quotes", "listener": "internal", "prefix": "/quotes", "methods": ["GET", "POST"],
             "handler": "quotes", "max_body_bytes": LIMIT, "body_timeout": 60}
    return {"admin": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"access_log": str(tmp / "access.log"), "app_log": str(tmp / "gateway.log")},
            "listeners": {"external": {"host": "127.0.0.1", "port": free_port()},
                          "internal": {"host": "127.0.0.1", "port": free_port()}},
            "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9"]}},
            "routes": [route], "quotes": {"redis_url": redis_url, "backlog_bound": 100}}


def _binary_stl(seed: int, triangles: int) -> bytes:
    rng = np.random.default_rng(seed)
    records = np.zeros(triangles, dtype=[("normal", "<f4", (3,)), ("vectors", "<f4", (9,)), ("attr", "<u2")])
    records["vectors"] = rng.random((triangles, 9), dtype=np.float32) * 100
    return b"bench".ljust(80, b" ") + struct.pack("<I", triangles) + records.tobytes()


def _percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return f"n={len(samples)}"
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100)[98]
    return f"n={len(ms)} p50={statistics.median(ms):.1f} ms p99={p99:.1f} ms max={ms[-1]:.1f} ms"


async def _cheap_gets(session: aiohttp.ClientSession, base: str, stop: asyncio.Event,
                      out: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        async with session.get(base + CHEAP) as resp:
            await resp.read()
        out.append(time.perf_counter() - started)


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "model/stl"}) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - started


def _post_blocking(base: str, path: str, body: bytes) -> tuple[int, float]:
    """The upload from its own thread and socket: the GET clients' loop never waits for it."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    started = time.perf_counter()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "model/stl"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - started
    finally:
        conn.close()


async def _pathological(base: str, mib: int, clients: int, repeat: int) -> None:
    body = b"solid facet\n" + b"\n" * ((mib << 20) - 12)  # at most the route limit
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        idle: list[float] = []
        stop = asyncio.Event()
        loops = [asyncio.create_task(_cheap_gets(session, base, stop, idle)) for _ in range(clients)]
        await asyncio.sleep(2)
        stop.set()
        await asyncio.gather(*loops)
        during: list[float] = []
        stop = asyncio.Event()
        loops = [asyncio.create_task(_cheap_gets(session, base, stop, during)) for _ in range(clients)]
        uploads = [await asyncio.to_thread(_post_blocking, base, "/quotes?material=PLA", body)
                   for _ in range(repeat)]
        stop.set()
        await asyncio.gather(*loops)
    print(f"pathological ASCII ({mib} MiB of newlines) x{repeat}, one after the other: HTTP "
          f"{sorted({s for s, _ in uploads})}, {' '.join(f'{t:.2f}' for _, t in uploads)} s")
    print(f"  cheap GET ({clients} clients) idle:   {_percentiles(idle)}")
    print(f"  cheap GET ({clients} clients) during: {_percentiles(during)}")


def _vm_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _rss(pid: int) -> tuple[int, int]:
    """(RSS of ``pid``, summed RSS of its direct children) in bytes, from /proc."""
    children = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children += _vm_rss(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return _vm_rss(pid), children


async def _four_binaries(base: str, pid: int) -> None:
    triangles = (LIMIT - 84) // 50
    models = [_binary_stl(seed, triangles) for seed in range(4)]
    idle, idle_children = _rss(pid)
    peak, peak_children = idle, idle_children
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak, peak_children
        while not done.is_set():
            own, children = _rss(pid)
            peak, peak_children = max(peak, own), max(peak_children, children)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        answers = await asyncio.gather(*(_post(session, f"{base}/quotes?material=PLA", m) for m in models))
    took = time.perf_counter() - started
    done.set()
    await sampler
    after, _ = _rss(pid)
    print(f"four {len(models[0]) >> 20} MiB binary STLs ({triangles} triangles each) at once: HTTP "
          f"{[s for s, _ in answers]} in {took:.2f} s")
    print(f"  gateway RSS: idle {idle >> 20} MiB, peak {peak >> 20} MiB (+{(peak - idle) >> 20} MiB), "
          f"after {after >> 20} MiB")
    print(f"  model-check processes RSS (sum): idle {idle_children >> 20} MiB, "
          f"peak {peak_children >> 20} MiB")


def _start_gateway(tree: Path, tmp: Path, cfg: dict[str, object]) -> subprocess.Popen[bytes]:
    (tmp / "gateway.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(tmp / "gateway.out", "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(tmp / "gateway.yaml")],
                                cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _main(args: argparse.Namespace, tree: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hostile-upload-") as tmp_dir:
        tmp = Path(tmp_dir)
        redis = RedisServer(tmp / "redis").start()
        cfg = _config(tmp, redis.url.rsplit("/", 1)[0] + "/2")
        gateway = await asyncio.to_thread(_start_gateway, tree, tmp, cfg)
        try:
            listeners = cfg["listeners"]
            assert isinstance(listeners, dict)
            base = f"http://127.0.0.1:{listeners['internal']['port']}"
            await _ready(base)
            print(f"tree {tree} (gateway pid {gateway.pid})")
            await _pathological(base, args.upload_mib, args.gets, args.repeat)
            await asyncio.sleep(1)
            await _four_binaries(base, gateway.pid)
        finally:
            gateway.terminate()
            gateway.wait(30)
            redis.stop()


async def _ready(base: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(base + CHEAP) as resp:
                    if resp.status == 404:
                        await asyncio.sleep(2)  # let the model-check processes finish starting
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("gateway not answering")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_upload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=str(ROOT), help="source tree whose gateway to run")
    parser.add_argument("--upload-mib", type=int, default=50, help="MiB of newlines in the hostile body")
    parser.add_argument("--gets", type=int, default=4, help="concurrent cheap-GET clients")
    parser.add_argument("--repeat", type=int, default=5, help="hostile uploads, one after the other")
    args = parser.parse_args(argv)
    asyncio.run(_main(args, Path(args.tree).resolve()))


if __name__ == "__main__":
    main()
