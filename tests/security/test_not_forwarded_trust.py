"""``X-Mes-Edge-Not-Forwarded`` is believed only where configured, and never reaches a client.

The header makes the gateway re-send a POST elsewhere (a sidecar's "the MES never got it"). An
arbitrary upstream must not be able to trigger that (a duplicate order, twice the load), so the
cluster option is off by default; the gateway strips the header from every answer, and a sidecar
strips a legacy's own copy so only the sidecar itself can set it. Real servers on loopback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from tests.integration.sidecar.sidecar_support import run_sidecar, sidecar_config
from tests.support.gateway import gateway_config, run_gateway

pytestmark = pytest.mark.timeout(60)
HEADER = "X-Mes-Edge-Not-Forwarded"
REQUESTS = 4


@asynccontextmanager
async def upstream(*, claims: bool) -> AsyncIterator[tuple[str, Counter[str]]]:
    """An endpoint counting requests by method; ``claims``: every answer carries the header, and
    a POST gets a 502 "connect-failure" (what a hostile or confused upstream could send)."""
    seen: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen[request.method] += 1
        if not claims:
            return web.json_response({"ok": True})
        status = 502 if request.method == "POST" else 200
        return web.json_response({"ok": status == 200}, status=status, headers={HEADER: "connect-failure"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


def unsent(cluster: str) -> float:
    return REGISTRY.get_sample_value("gateway_upstream_retries_unsent_total",
                                     {"cluster": cluster, "reason": "upstream-connect-failure"}) or 0.0


async def test_an_upstream_cannot_trigger_retries_nor_pass_the_header_without_the_option(
        tmp_path: Path) -> None:
    async with upstream(claims=True) as (hostile, hostile_seen), upstream(claims=False) as (good, good_seen):
        cfg = gateway_config(
            tmp_path,
            clusters={"other": {"endpoints": [hostile, good], "balancer": "round_robin", "health_check": None,
                                "outlier": {"consecutive_failures": 1000}}},  # option left at its default
            routes=[{"name": "other", "listener": "internal", "prefix": "/things", "cluster": "other"}])
        async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
            before = unsent("other")
            answers = []
            for method in ("POST",) * REQUESTS + ("GET",) * REQUESTS:
                async with s.request(method, f"{gw.internal}/things", json={"n": 1}) as r:
                    await r.read()
                    answers.append((method, r.status, HEADER in r.headers))
    assert not any(header for _, _, header in answers)  # stripped from 502s and 200s alike
    half = REQUESTS // 2
    assert sorted(st for m, st, _ in answers if m == "POST") == [200] * half + [502] * half
    # no POST was re-sent: each endpoint saw exactly its round-robin share
    assert (hostile_seen["POST"], good_seen["POST"]) == (half, half)
    assert unsent("other") == before


async def test_a_legacy_cannot_set_the_header_through_its_sidecar(tmp_path: Path) -> None:
    async with upstream(claims=True) as (legacy, seen), run_sidecar(sidecar_config(legacy, tmp_path)) as sc, \
            aiohttp.ClientSession() as s:
        for method in ("POST", "GET"):
            async with s.request(method, f"{sc.url}/orders", json={"n": 1}) as r:
                await r.read()
                assert r.status == (502 if method == "POST" else 200)
                assert HEADER not in r.headers  # only the sidecar's own connect failure carries it
    assert seen == Counter({"POST": 1, "GET": 1})
