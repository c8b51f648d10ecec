"""The quote API on a sharded pricing queue (``quotes.shards``) on a real 3-primary Redis Cluster:
a job is queued in its partner's shard, read back by its id (which names the shard), priced by a
worker serving every shard; ids naming no shard a deployment can have are 404, never 500."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.redis_keys import shard_of_owner
from legacy_adapters.shards import ShardedQueue
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.pricing_support import LOCAL
from tests.support.gateway import GatewayUnderTest, gateway_config, run_gateway
from tests.support.partner_edge import api_keys_section, make_keys
from tests.support.redis_cluster_keys import ClusterNodes
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)
STL = {"Content-Type": "model/stl"}
SHARDS = 4
ROUTE = {"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
         "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 4096,
         "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}}


@pytest.fixture
async def edge(tmp_path: Path, redis_cluster_nodes: ClusterNodes
               ) -> AsyncIterator[tuple[GatewayUnderTest, list[str]]]:
    store, keys = make_keys(tmp_path, ("acme", "gold", ("quotes:read", "quotes:write")),
                            ("globex", "gold", ("quotes:read", "quotes:write")))
    config = gateway_config(tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}}, routes=[ROUTE],
                            api_keys=api_keys_section(store),
                            quotes={"redis_url": redis_cluster_nodes.spec, "shards": SHARDS,
                                    "probe_interval": 0.2})
    async with run_gateway(config, tmp_path) as gw:
        yield gw, keys


async def test_a_partner_job_is_queued_in_its_shard_read_by_its_id_and_priced(
        edge: tuple[GatewayUnderTest, list[str]], redis_cluster_nodes: ClusterNodes) -> None:
    gw, (acme, globex) = edge
    auth = {"Authorization": f"Bearer {acme}"}
    queue = ShardedQueue.from_url(redis_cluster_nodes.spec, shards=SHARDS)
    stop = asyncio.Event()
    worker = None
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=box_stl_binary(),
                              headers={**STL, **auth}) as resp:
                assert resp.status == 202
                job_id = (await resp.json())["id"]
            assert job_id.startswith(f"{shard_of_owner('acme', SHARDS)}-")
            async with s.get(f"{gw.external}/partner/v1/quotes/{job_id}", headers=auth) as resp:
                assert resp.status == 200
            async with s.get(f"{gw.external}/partner/v1/quotes/{job_id}",
                             headers={"Authorization": f"Bearer {globex}"}) as resp:
                assert resp.status == 404  # another partner's job, as unsharded
            wrong_shard = (shard_of_owner("acme", SHARDS) + 1) % SHARDS
            for other in (f"9999-{job_id[-32:]}", f"{wrong_shard}-{job_id[-32:]}", job_id[-32:]):
                async with s.get(f"{gw.external}/partner/v1/quotes/{other}", headers=auth) as resp:
                    assert resp.status == 404, other
            worker = asyncio.create_task(QuoteWorker(queue, CallableBackend(LOCAL),
                                                     WorkerSettings(name="w", block_ms=100)).run(stop))

            async def priced() -> bool:
                async with s.get(f"{gw.external}/partner/v1/quotes/{job_id}", headers=auth) as resp:
                    return bool((await resp.json())["status"] == "done")

            await eventually(priced, timeout=30, what="the sharded job priced")
    finally:
        stop.set()
        if worker is not None:
            await worker
        await queue.aclose()


def test_a_shard_whose_model_budget_is_below_a_quote_route_body_limit_is_refused() -> None:
    data: dict[str, Any] = {
        "listeners": {"external": {"port": 8080}},
        "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        "routes": [copy.deepcopy(ROUTE) | {"max_body_bytes": 52_428_800}],
        "quotes": {"shards": 16, "model_store_bytes": 268_435_456},
    }
    with pytest.raises(ConfigError, match=r"^quotes.model_store_bytes: each of the 16 shards"):
        parse_config(data)
    data["quotes"]["shards"] = 4
    assert parse_config(data).quotes is not None
