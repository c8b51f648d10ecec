"""A Sentinel failover under load: the gateways degrade to local shares, never answer 5xx, and
return to shared counters on the promoted replica by themselves (docs/partner-edge.md)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import GatewayUnderTest, run_gateway
from tests.support.partner_edge import ECHO_PATH, make_keys, partner_echo_config
from tests.support.redis_sentinel import redis_sentinel
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
TIERS = {"gold": {"burst": "100000/second", "rate": "1000000/minute"}}


def _cfg(tmp_path: Path, upstream: str, store: Path, spec: str) -> dict[str, object]:
    tmp_path.mkdir()
    return partner_echo_config(
        tmp_path, upstream, store,
        ratelimit={"redis_url": spec, "default_tier": "gold", "tiers": TIERS, "socket_timeout": 0.1,
                   "heartbeat_interval": 0.2})


async def _metric(gw: GatewayUnderTest, sample: str) -> float:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.admin}/metrics") as r:
        text = await r.text()
    line = next((ln for ln in text.splitlines() if ln.startswith(sample + " ")), f"{sample} 0")
    return float(line.rsplit(" ", 1)[1])


async def _load(gateways: list[GatewayUnderTest], key: str, statuses: Counter[int]) -> None:
    """Requests alternating between the gateways until cancelled, counting the answers."""
    targets = itertools.cycle(gateways)
    async with aiohttp.ClientSession() as s:
        while True:
            async with s.get(f"{next(targets).external}{ECHO_PATH}", headers={"X-API-Key": key}) as r:
                await r.read()
                statuses[r.status] += 1


async def test_a_sentinel_failover_degrades_then_returns_to_shared_counters(tmp_path: Path) -> None:
    store, (key,) = make_keys(tmp_path, ("acme", "gold", ("orders:read",)))
    with redis_sentinel(tmp_path / "sentinel") as topology:
        async with fake_upstream() as up, \
                run_gateway(_cfg(tmp_path / "a", up.url, store, topology.url), tmp_path / "a") as a, \
                run_gateway(_cfg(tmp_path / "b", up.url, store, topology.url), tmp_path / "b") as b:
            assert await _metric(a, 'gateway_redis_topology{kind="sentinel"}') == 1
            failovers = await _metric(a, "gateway_redis_failovers_total")  # one registry per test process
            reconnects = await _metric(a, 'gateway_redis_reconnects_total{user="ratelimit"}')
            degraded_before = await _metric(a, 'gateway_ratelimit_mode_switches_total{mode="degraded"}')
            statuses: Counter[int] = Counter()
            load = asyncio.create_task(_load([a, b], key, statuses))
            try:
                await eventually(lambda: _at_least(statuses, 50), timeout=10, what="load before the kill")
                old = topology.kill_primary()

                async def degraded() -> bool:
                    return await _metric(a, 'gateway_ratelimit_mode_switches_total{mode="degraded"}') \
                        > degraded_before

                async def recovered() -> bool:
                    return (await _metric(a, "gateway_redis_failovers_total") > failovers
                            and await _metric(a, "gateway_ratelimit_degraded") == 0)

                await eventually(degraded, timeout=10, what="degraded mode after the primary died")
                await eventually(recovered, timeout=60, what="shared mode on the promoted replica")
                assert topology.primary_address()[1] != old
                served = sum(statuses.values())
                await eventually(lambda: _at_least(statuses, served + 50), timeout=10, what="load after")
            finally:
                load.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await load
            assert set(statuses) == {200}, statuses  # limits far above the load: never a 429, never a 5xx
            assert await _metric(a, 'gateway_redis_reconnects_total{user="ratelimit"}') > reconnects


async def _at_least(statuses: Counter[int], count: int) -> bool:
    return sum(statuses.values()) >= count
