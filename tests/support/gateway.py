"""Run the real gateway for a test: in this event loop, or as a `python -m gateway` process."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devstack.ports import free_port

#: The operator token of test configs (admin /config and /cache/purge; the internal listener off loopback).
OPERATOR_TOKEN = "test-operator-token-0123456789abcdef"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
#: ``gateway_config(..., operator_auth=OPERATOR_AUTH)`` for tests that call those endpoints.
OPERATOR_AUTH: dict[str, Any] = {"tokens": OPERATOR_TOKEN}


@dataclass
class GatewayUnderTest:
    external: str
    internal: str
    admin: str
    config_path: Path
    proc: subprocess.Popen[bytes] | None = None


def gateway_config(tmp_path: Path, *, clusters: dict[str, Any], routes: list[dict[str, Any]],
                   **top: Any) -> dict[str, Any]:
    """A full gateway config on free loopback ports; logs go to files under ``tmp_path``."""
    return {
        "admin": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"access_log": str(tmp_path / "access.log"), "app_log": str(tmp_path / "gateway.log")},
        "listeners": {"external": {"host": "127.0.0.1", "port": free_port()},
                      "internal": {"host": "127.0.0.1", "port": free_port(), "trust_forwarded": True}},
        "clusters": clusters,
        "routes": routes,
        **top,
    }


def _repick_ports(cfg: dict[str, Any]) -> None:
    """Fresh free ports for the admin and every listener of ``cfg`` (in place)."""
    cfg["admin"]["port"] = free_port()
    for listener in cfg["listeners"].values():
        listener["port"] = free_port()


def _urls(cfg: dict[str, Any], path: Path) -> GatewayUnderTest:
    lst = cfg["listeners"]
    return GatewayUnderTest(external=f"http://127.0.0.1:{lst['external']['port']}",
                            internal=f"http://127.0.0.1:{lst['internal']['port']}",
                            admin=f"http://127.0.0.1:{cfg['admin']['port']}", config_path=path)


async def wait_ready(admin_url: str, timeout: float = 15.0) -> None:
    """Poll /readyz until 200 (every cluster has a healthy endpoint)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{admin_url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway at {admin_url} not ready after {timeout} s")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def run_gateway(cfg: dict[str, Any], tmp_path: Path, *, ready: bool = True,
                      tracer_provider: Any = None) -> AsyncIterator[GatewayUnderTest]:
    """The gateway's ``serve()`` as a task in the test's loop; stopped (drained) on exit."""
    from gateway.server import serve

    path = tmp_path / "gateway.yaml"
    for attempt in range(3):
        path.write_text(yaml.safe_dump(cfg))
        started, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(path, started=started, stop=stop, tracer_provider=tracer_provider))
        waiter = asyncio.create_task(started.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            break
        waiter.cancel()
        error = task.exception()
        if not (isinstance(error, OSError) and error.errno == errno.EADDRINUSE) or attempt == 2:
            task.result()  # raises the start-up error
        _repick_ports(cfg)  # free_port() is racy: another process took one of ours meanwhile
    gw = _urls(cfg, path)
    try:
        if ready:
            await wait_ready(gw.admin)
        yield gw
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@asynccontextmanager
async def gateway_process(cfg: dict[str, Any], tmp_path: Path, *, workers: int = 1
                          ) -> AsyncIterator[GatewayUnderTest]:
    """``python -m gateway`` as a child process (stopped by PID with SIGTERM)."""
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    env.pop("PROMETHEUS_MULTIPROC_DIR") if workers == 1 else None
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path), "--workers",
                             str(workers)], env=env, stdout=(tmp_path / "stdout.log").open("wb"),
                            stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    gw = _urls(cfg, path)
    gw.proc = proc
    try:
        await wait_ready(gw.admin)
        yield gw
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def legacy_pair_config(tmp_path: Path, *, mes_url: str, crm_url: str) -> dict[str, Any]:
    """A gateway in front of one MES and one CRM (usually their sidecars), internal routes only:
    ``/orders`` → mes, ``/crm/orders`` → crm (rewritten to ``/orders``)."""
    routes = [{"name": "orders", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
              {"name": "crm-orders", "listener": "internal", "prefix": "/crm/orders", "cluster": "crm",
               "rewrite_prefix": "/orders"}]
    clusters = {"mes": {"endpoints": [mes_url]}, "crm": {"endpoints": [crm_url]}}
    return gateway_config(tmp_path, clusters=clusters, routes=routes)
