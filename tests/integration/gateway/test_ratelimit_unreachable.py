"""What the rate limiter exports when its store goes away, as GatewayRateLimitBackendUnreachable
reads it (docs/runbooks/GatewayRateLimitBackendUnreachable.md): a refused store counts
``reason="connection"``, a frozen one (accepts, never answers) only ``reason="timeout"`` — and both
make every heartbeat probe fail in a row (``gateway_ratelimit_failed_probes``), which a slow box
that misses a deadline now and then does not; a probe that succeeds sets it back to 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from devstack import RedisServer
from devstack.ports import free_port
from gateway.ratelimit import PartnerLimiter, RateLimitConfig
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)


def _errors(reason: str) -> float:
    return REGISTRY.get_sample_value("gateway_ratelimit_backend_errors_total", {"reason": reason}) or 0.0


def _failed_probes() -> float:
    return REGISTRY.get_sample_value("gateway_ratelimit_failed_probes") or 0.0


@asynccontextmanager
async def _limiter(url: str) -> AsyncIterator[PartnerLimiter]:
    limiter = PartnerLimiter(RateLimitConfig(redis_url=url, socket_timeout=0.05, heartbeat_interval=0.05))
    await limiter.start()
    try:
        yield limiter
    finally:
        await limiter.aclose()


async def _probes_failed_in_a_row(n: int) -> None:
    async def failing() -> bool:
        return _failed_probes() >= n

    await eventually(failing, timeout=20, what=f"{n} heartbeat probes failed in a row")


async def test_a_refused_store_counts_connection_errors_and_recovers_to_zero_failed_probes(
        tmp_path: Path) -> None:
    port = free_port()
    before = {r: _errors(r) for r in ("connection", "timeout")}
    async with _limiter(f"redis://127.0.0.1:{port}/0") as limiter:
        await _probes_failed_in_a_row(3)
        assert limiter.degraded
        assert _errors("connection") >= before["connection"] + 3
        assert _errors("timeout") == before["timeout"]

        with RedisServer(tmp_path / "redis", port=port):
            async def shared_again() -> bool:
                return not limiter.degraded and _failed_probes() == 0

            await eventually(shared_again, timeout=20, what="shared mode and 0 failed probes")


async def test_a_frozen_store_counts_only_timeouts_and_fails_every_probe() -> None:
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)  # what a SIGSTOPped Redis does: the kernel accepts, nobody answers

    server = await asyncio.start_server(accept_and_never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = {r: _errors(r) for r in ("connection", "timeout", "reply")}
    try:
        async with _limiter(f"redis://127.0.0.1:{port}/0") as limiter:
            await _probes_failed_in_a_row(3)
            assert limiter.degraded
            assert _errors("timeout") >= before["timeout"] + 3
            assert _errors("connection") == before["connection"]
            assert _errors("reply") == before["reply"]
    finally:
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()
