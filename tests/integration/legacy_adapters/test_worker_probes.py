"""The pricing worker's probe server (telemetry.start_metrics_server with health checks): /metrics,
/healthz and /readyz on the metrics thread, and /healthz failing while the worker's event loop is
blocked — the case a probe on /metrics alone (answered by that thread) could never see."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator

import pytest

from legacy_adapters.worker_health import WorkerHealth
from telemetry.metrics import start_metrics_server
from tests.support.waiting import eventually


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback test server)
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _status_is(url: str, wanted: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await asyncio.to_thread(_get, url))[0] == wanted

    return check


@pytest.fixture
def worker_loop() -> Iterator[tuple[WorkerHealth, asyncio.AbstractEventLoop, str]]:
    """A WorkerHealth stamped by a real event loop on its own thread, and its probe server."""
    health = WorkerHealth(stall_after=0.5, stale_after=60)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(health.watch_loop(stop, period=0.05),))
    thread.start()
    server, _ = start_metrics_server(0, health=health.checks())
    try:
        yield health, loop, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()


def test_metrics_and_probes_answer(worker_loop: tuple[WorkerHealth, asyncio.AbstractEventLoop, str]) -> None:
    health, _, url = worker_loop
    status, body = _get(f"{url}/metrics")
    assert status == 200
    assert "# TYPE" in body
    assert _get(f"{url}/healthz") == (200, "ok\n")
    assert _get(f"{url}/readyz") == (503, "no heartbeat to Redis yet\n")
    health.heartbeat_succeeded()
    assert _get(f"{url}/readyz") == (200, "ok\n")


async def test_a_blocked_event_loop_fails_liveness_while_metrics_still_answer(
        worker_loop: tuple[WorkerHealth, asyncio.AbstractEventLoop, str]) -> None:
    _, loop, url = worker_loop
    released = threading.Event()
    loop.call_soon_threadsafe(released.wait, 10)  # blocks the loop, as a stuck CPU-bound call would
    try:
        await eventually(_status_is(f"{url}/healthz", 503), timeout=10, what="/healthz sees the stall")
        _, body = await asyncio.to_thread(_get, f"{url}/healthz")
        assert body.startswith("event loop stalled for")
        assert (await asyncio.to_thread(_get, f"{url}/metrics"))[0] == 200  # /metrics cannot tell
    finally:
        released.set()
    await eventually(_status_is(f"{url}/healthz", 200), timeout=10, what="/healthz recovers")
