"""Run the real sidecar in the test's event loop, and read what it exports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from devstack.ports import free_port
from legacy_sim.mes import MesConfig, build_mes_app
from sidecar.config import SidecarConfig
from sidecar.server import serve

ORDER = {"customer": "Acme GmbH", "material": "PLA", "quantity": 3, "model_name": "bracket.stl"}


@dataclass
class SidecarUnderTest:
    url: str
    admin: str
    config: SidecarConfig


def sidecar_config(upstream: str, tmp_path: Path, **overrides: Any) -> SidecarConfig:
    """A sidecar on free loopback ports with its access log in ``tmp_path``."""
    settings: dict[str, Any] = {"kind": "mes", "upstream": upstream, "instance_id": "mes-t",
                                "listen_port": free_port(), "admin_port": free_port(),
                                "access_log": str(tmp_path / "access.log"), "drain_timeout": 1.0}
    settings.update(overrides)
    return SidecarConfig(**settings)


@asynccontextmanager
async def running_mes(dsn: str) -> AsyncIterator[str]:
    """The legacy MES stand-in on a free loopback port; yields its base URL (no trailing slash)."""
    server = TestServer(build_mes_app(mes_config(dsn)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@asynccontextmanager
async def run_sidecar(config: SidecarConfig, *, tracer_provider: Any = None
                      ) -> AsyncIterator[SidecarUnderTest]:
    """``sidecar.server.serve`` as a task in this loop; stopped (drained) on exit."""
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(config, tracer_provider=tracer_provider, started=started, stop=stop))
    waiter = asyncio.create_task(started.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
    try:
        yield SidecarUnderTest(url=f"http://127.0.0.1:{config.listen_port}",
                               admin=f"http://127.0.0.1:{config.admin_port}", config=config)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


def sample(name: str, **labels: str) -> float:
    """Current value of a sample on the default registry (0.0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def in_memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider that is never installed globally, and its exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def mes_config(dsn: str) -> MesConfig:
    """The legacy MES stand-in for tests: no pricing delay, small pool."""
    return MesConfig(dsn=dsn, price_delay_s=0.0, pool_min_size=1, pool_max_size=4, startup_wait_s=5.0,
                     instance_id="mes-t")


def access_log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``predicate()`` (sync) until true; bounded, fails with a clear message."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(interval)


async def create_orders(mes: TestClient[Any, Any], n: int) -> list[int]:
    """``n`` orders through the MES stand-in's API; their ids."""
    ids = []
    for _ in range(n):
        async with mes.post("/orders", json=ORDER) as resp:
            assert resp.status == 201
            ids.append((await resp.json())["id"])
    return ids


async def move_order(mes: TestClient[Any, Any], order_id: int, *statuses: str) -> None:
    """Walk ``order_id`` through ``statuses`` with the MES stand-in's API."""
    for status in statuses:
        async with mes.post(f"/orders/{order_id}/status", json={"status": status}) as resp:
            assert resp.status == 200, await resp.text()
