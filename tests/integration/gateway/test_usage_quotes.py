"""Usage of the quote API on real Redis: quotes created, models priced by the legacy (counted by
the worker, once per job even when redelivered) and models answered by dedup without a legacy
call; an idempotent replay is not a new quote."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from legacy_sim.pricing.samples import box_stl_binary
from sharedstate.usage_counts import UsageCounts
from tests.integration.legacy_adapters.pricing_support import LOCAL, geometric_copy
from tests.support.gateway import gateway_config, run_gateway
from tests.support.partner_edge import api_keys_section, make_keys
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(90)
STL = {"Content-Type": "model/stl"}
SCOPES = ("quotes:read", "quotes:write")


def _config(tmp_path: Path, redis_url: str, store: Path) -> dict[str, Any]:
    return gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
                 "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 4096,
                 "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}},
                {"name": "partner-usage", "listener": "external", "prefix": "/partner/v1/usage",
                 "methods": ["GET"], "handler": "usage"}],
        api_keys=api_keys_section(store), quotes={"redis_url": redis_url, "probe_interval": 0.2},
        usage={"redis_url": redis_url, "flush_interval": 0.05})


async def test_quotes_priced_and_deduplicated_models_are_counted_once_each(tmp_path: Path,
                                                                         redis_url: str) -> None:
    store, (acme,) = make_keys(tmp_path, ("acme", "gold", SCOPES))
    auth = {"X-API-Key": acme}
    today = dt.datetime.now(dt.UTC).date().isoformat()
    client = aioredis.Redis.from_url(redis_url)
    usage = UsageCounts(client)
    queue = PricingQueue.from_url(redis_url)
    stop = asyncio.Event()
    worker = asyncio.create_task(QuoteWorker(queue, CallableBackend(LOCAL), WorkerSettings(
        name="usage-test", block_ms=100), usage=usage).run(stop))
    try:
        async with run_gateway(_config(tmp_path, redis_url, store), tmp_path) as gw, \
                aiohttp.ClientSession() as s:
            async def post(model: bytes, key: str = "") -> dict[str, Any]:
                headers = {**STL, **auth, **({"Idempotency-Key": key} if key else {})}
                async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=model,
                                  headers=headers) as r:
                    assert r.status in (200, 202), await r.text()
                    body: dict[str, Any] = await r.json()
                    return body

            first = await post(box_stl_binary(), key="k1")

            async def priced() -> bool:
                async with s.get(f"{gw.external}/partner/v1/quotes/{first['id']}", headers=auth) as r:
                    return bool((await r.json())["status"] == "done")
            await eventually(priced, timeout=20, what="the first model priced")
            await post(box_stl_binary(), key="k1")        # the same request again: a replay
            await post(geometric_copy(10, 10, 10))         # the same geometry: from the price cache
            # a redelivered job is counted once: the worker's write is idempotent per job id
            assert not await usage.add("acme", {today: {"models_priced": 1}}, mode="once", token=first["id"])

            async def counted() -> bool:
                row = (await usage.read("acme", [today])).get(today, {})
                return row.get("quotes") == 2 and row.get("models_deduplicated") == 1
            await eventually(counted, timeout=10, what="quotes and dedup counted")
            async with s.get(f"{gw.external}/partner/v1/usage", params={"from": today, "to": today},
                             headers=auth) as r:
                totals = (await r.json())["totals"]
        assert (totals["quotes"], totals["models_priced"], totals["models_deduplicated"]) == (2, 1, 1)
    finally:
        stop.set()
        await worker
        await queue.aclose()
        await client.aclose()
