"""Load shedding through the real gateway: a slow cluster, a partner flood, operators first.

Bounds, not speed: every request runs under ``asyncio.timeout``; a request that hangs
past its configured bound (limiter wait + upstream time + slack) fails the test.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.fake_upstream import FakeUpstream, fake_upstream
from tests.support.gateway import (
    OPERATOR_AUTH,
    OPERATOR_HEADERS,
    GatewayUnderTest,
    gateway_config,
    run_gateway,
)

pytestmark = pytest.mark.timeout(90)

SLOW = 0.2  # seconds the endpoint takes per request
MAX_WAIT = 0.5  # limiter queue wait bound
BOUND = SLOW + MAX_WAIT + 3.0  # no request may take longer (slack for a loaded CI box)


def _routes() -> list[dict[str, Any]]:
    return [
        # operators: internal listener, priority high by default
        {"name": "ops-slow", "listener": "internal", "prefix": "/slow", "cluster": "mes"},
        # partners: external listener, priority normal by default; no API key for the test
        {"name": "partner-slow", "listener": "external", "prefix": "/partner/test/slow", "cluster": "mes",
         "rewrite_prefix": "/slow", "auth": {"required": False}},
    ]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


async def _gateway(tmp_path: Path, upstream: FakeUpstream, **adaptive: Any) -> dict[str, Any]:
    return gateway_config(tmp_path, clusters={"mes": {
        "endpoints": [upstream.url], "retry": {"attempts": 0},
        "adaptive_concurrency": adaptive}}, routes=_routes(), operator_auth=OPERATOR_AUTH)


async def _snapshot(session: aiohttp.ClientSession, gw: GatewayUnderTest) -> dict[str, Any]:
    async with session.get(f"{gw.admin}/upstreams", headers=OPERATOR_HEADERS) as resp:
        state: dict[str, Any] = (await resp.json())["mes"]["adaptive_concurrency"]
        return state


async def _metric(session: aiohttp.ClientSession, gw: GatewayUnderTest, prefix: str) -> float:
    async with session.get(f"{gw.admin}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture
async def fixed_limit_gw(tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[GatewayUnderTest]:
    # min = max = initial: the limit cannot move, so the test is about queueing and shedding only.
    cfg = await _gateway(tmp_path, upstream, initial_limit=4, min_limit=4, max_limit=4, max_queue=4,
                         max_wait=MAX_WAIT)
    async with run_gateway(cfg, tmp_path) as gw:
        yield gw


async def test_operators_get_through_while_a_partner_flood_is_shed_with_503_retry_after(
    fixed_limit_gw: GatewayUnderTest,
) -> None:
    gw = fixed_limit_gw
    partner_statuses: Counter[int] = Counter()
    shed_answers: list[tuple[str | None, str, dict[str, Any]]] = []
    first_shed = asyncio.Event()
    stop = asyncio.Event()

    async def partner(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with asyncio.timeout(BOUND), session.get(
                f"{gw.external}/partner/test/slow?seconds={SLOW}"
            ) as resp:
                partner_statuses[resp.status] += 1
                if resp.status == 503:
                    shed_answers.append((resp.headers.get("Retry-After"), resp.content_type,
                                         await resp.json(content_type=None)))
                    first_shed.set()
                    await asyncio.sleep(0.01)  # a polite client; keeps the loop from spinning
                else:
                    await resp.read()

    async def operator(session: aiohttp.ClientSession) -> int:
        async with asyncio.timeout(BOUND), session.get(f"{gw.internal}/slow?seconds={SLOW}") as resp:
            await resp.read()
            return resp.status

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        flood = [asyncio.create_task(partner(session)) for _ in range(16)]
        try:
            async with asyncio.timeout(BOUND * 2):
                await first_shed.wait()  # the limiter is saturated and its queue full
            assert (await _snapshot(session, gw))["limit"] == 4
            operators = await asyncio.gather(*(operator(session) for _ in range(3)))
        finally:
            stop.set()
            async with asyncio.timeout(BOUND * 2):
                await asyncio.gather(*flood)
        shed_partners = await _metric(session, gw, 'gateway_load_shed_total{cluster="mes",priority="normal"')
        shed_operators = await _metric(session, gw, 'gateway_load_shed_total{cluster="mes",priority="high"')
        limit_gauge = await _metric(session, gw, 'gateway_adaptive_concurrency_limit{cluster="mes"}')
        state = await _snapshot(session, gw)

    assert operators == [200, 200, 200]
    assert partner_statuses[503] > 0
    assert set(partner_statuses) <= {200, 503}
    retry_after, content_type, body = shed_answers[0]
    assert retry_after is not None
    assert int(retry_after) >= 1
    assert content_type == "application/problem+json"
    assert body["type"].endswith("/load-shed")
    assert body["status"] == 503
    assert shed_partners == partner_statuses[503]
    assert shed_operators == 0
    assert limit_gauge == 4
    assert (state["in_flight"], state["queued"]) == (0, 0)  # every slot came back


async def test_the_limit_falls_when_the_cluster_slows_down(tmp_path: Path, upstream: FakeUpstream) -> None:
    cfg = await _gateway(tmp_path, upstream, initial_limit=8, min_limit=1, max_limit=8, max_queue=16,
                         max_wait=2.0, sample_window=0.2, min_samples=5)
    stop = asyncio.Event()
    delay = {"seconds": 0.005}

    async def operator(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with asyncio.timeout(BOUND + 2.0), session.get(
                f"{gw.internal}/slow?seconds={delay['seconds']}"
            ) as resp:
                await resp.read()
                assert resp.status in (200, 503)

    async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0)
    ) as session:
        workers = [asyncio.create_task(operator(session)) for _ in range(8)]
        try:
            async with asyncio.timeout(30):
                while (await _snapshot(session, gw))["baseline_rtt_ms"] == 0:  # a healthy baseline
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # a few more healthy windows
                assert (await _snapshot(session, gw))["limit"] == 8
                delay["seconds"] = 0.25  # the cluster slows down 50x
                while (await _snapshot(session, gw))["limit"] >= 8:
                    await asyncio.sleep(0.1)
        finally:
            stop.set()
            async with asyncio.timeout(BOUND * 3):
                await asyncio.gather(*workers)
        state = await _snapshot(session, gw)
    assert state["limit"] < 8
    assert (state["in_flight"], state["queued"]) == (0, 0)
