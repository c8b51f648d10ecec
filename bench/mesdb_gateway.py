"""``make run``'s cache-miss path for ``bench.mesdb``: the operators' order list through a real gateway
(internal listener) → a real MES sidecar → the bench's legacy MES, every request a cache miss.

The gateway's ``orders`` route here has no ``cache:`` block and the config no top-level ``cache:``
section, so no request can be answered from a cache: each one goes to the MES (checked: the
gateway's ``gateway_upstream_requests_total`` for cluster ``mes`` grows by exactly the number of
requests made). The sidecar runs without ``--dsn``/``--redis-url`` (no probes, no events: the probe
cycle is timed on its own) — the proxy hop ``make run`` puts in front of each MES.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.mesdb_calls import Timing, list_orders, timing
from contracts.lifecycle import ACTIVE_STATUS_NAMES
from devstack import free_port
from devstack.ports import wait_for_port
from devstack.process import ServerProcess, wait_ready

#: name prefixes: a gateway row pairs with the MES-direct row of the same call
GATEWAY, DIRECT = "gateway", "MES"
_UPSTREAM = re.compile(r'^gateway_upstream_requests_total\{[^}]*cluster="mes"[^}]*\} ([0-9.e+]+)$', re.M)


def gateway_config(sidecar_url: str, logs: Path) -> dict[str, Any]:
    """The bench's gateway: the internal listener's ``orders`` route to the sidecar, no cache."""
    return {
        "admin": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"access_log": str(logs / "gateway-access.log")},
        "listeners": {"internal": {"host": "127.0.0.1", "port": free_port()}},
        "clusters": {
            "mes": {
                "endpoints": [sidecar_url],
                "retry": {"attempts": 0},
                # the legacy's unfiltered list takes seconds before `mesdb apply` at 10M orders
                "timeouts": {"connect": 1.0, "per_try": 120.0, "overall": 120.0},
            }
        },
        # no `cache:` on the route: every request is a cache miss
        "routes": [
            {
                "name": "orders",
                "listener": "internal",
                "prefix": "/orders",
                "methods": ["GET"],
                "cluster": "mes",
            }
        ],
    }


def _python(name: str, args: list[str], logs: Path) -> ServerProcess:
    proc = ServerProcess([sys.executable, *args], log_path=logs / f"{name}.log")
    proc.start()
    return proc


@contextmanager
def gateway_path(mes_url: str, logs: Path) -> Iterator[tuple[str, str]]:
    """A sidecar in front of ``mes_url`` and a gateway in front of the sidecar, both stopped by PID;
    yields (the gateway's internal listener URL, its admin URL)."""
    sidecar, sidecar_admin = free_port(), free_port()
    procs = [
        _python(
            f"sidecar-{sidecar}",
            [
                "-m",
                "sidecar",
                "--kind",
                "mes",
                "--upstream",
                mes_url,
                "--listen",
                f"127.0.0.1:{sidecar}",
                "--admin",
                f"127.0.0.1:{sidecar_admin}",
                "--timeout",
                "120",
                "--access-log",
                str(logs / f"sidecar-{sidecar}-access.log"),
            ],
            logs,
        )
    ]
    try:
        wait_for_port(sidecar, timeout=30)
        cfg = gateway_config(f"http://127.0.0.1:{sidecar}", logs)
        path = logs / f"gateway-{sidecar}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        gateway = _python(
            f"gateway-{sidecar}", ["-m", "gateway", "--config", str(path), "--workers", "1"], logs
        )
        procs.append(gateway)
        admin = f"http://127.0.0.1:{cfg['admin']['port']}"
        wait_ready(f"{admin}/readyz", gateway, timeout=60)
        yield f"http://127.0.0.1:{cfg['listeners']['internal']['port']}", admin
    finally:
        for proc in reversed(procs):
            proc.stop()


def upstream_requests(admin_url: str) -> float:
    """The gateway's requests to cluster ``mes`` so far (its admin ``/metrics``)."""
    with urllib.request.urlopen(f"{admin_url}/metrics", timeout=5) as resp:  # noqa: S310 (loopback URL)
        text = resp.read().decode()
    return sum(float(v) for v in _UPSTREAM.findall(text))


async def _paired(
    name: str,
    via_gateway: Callable[[], Awaitable[object]],
    direct: Callable[[], Awaitable[object]],
    repeat: int,
) -> tuple[Timing, Timing]:
    """The same call through the gateway and straight to the MES, alternating (one warm-up each)."""
    await via_gateway()
    await direct()
    seconds: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for call, out in zip((via_gateway, direct), seconds, strict=True):
            started = time.perf_counter()
            await call()
            out.append(time.perf_counter() - started)
    return timing(f"{GATEWAY} {name}", seconds[0]), timing(f"{DIRECT} {name}", seconds[1])


async def measure_gateway(
    gateway_url: str, admin_url: str, mes_url: str, *, repeat: int
) -> tuple[list[Timing], list[Timing]]:
    """The active-status lists and the unfiltered list through the gateway and, alternating with
    them, straight to the MES: (gateway timings, paired MES-direct timings), ``repeat`` each after one
    warm-up, sequential. Raises if any request through the gateway was not forwarded to the MES."""
    calls = [(f"list status={s}", {"status": s}) for s in ACTIVE_STATUS_NAMES] + [("list (no filter)", {})]
    through: list[Timing] = []
    direct: list[Timing] = []
    before = upstream_requests(admin_url)
    timeout = aiohttp.ClientTimeout(total=180)
    async with (
        aiohttp.ClientSession(gateway_url, timeout=timeout) as gw,
        aiohttp.ClientSession(mes_url, timeout=timeout) as mes,
    ):
        for name, params in calls:
            g, d = await _paired(
                name,
                functools.partial(list_orders, gw, params),
                functools.partial(list_orders, mes, params),
                repeat,
            )
            through.append(g)
            direct.append(d)
    forwarded, made = upstream_requests(admin_url) - before, len(calls) * (repeat + 1)
    if forwarded != made:
        raise RuntimeError(f"{made} requests through the gateway, {forwarded:.0f} forwarded: not all misses")
    return through, direct


def overhead(through: list[dict[str, Any]], direct: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(call, p50 gateway - MES-direct, p95 gateway - MES-direct) in ms, for each call in both lists
    (matched by the name after the ``gateway``/``MES`` prefix), in the order of ``through``."""
    by_call = {d["name"].removeprefix(f"{DIRECT} "): d for d in direct}
    rows = []
    for t in through:
        call = t["name"].removeprefix(f"{GATEWAY} ")
        if (d := by_call.get(call)) is not None:
            rows.append((call, t["p50_ms"] - d["p50_ms"], t["p95_ms"] - d["p95_ms"]))
    return rows
