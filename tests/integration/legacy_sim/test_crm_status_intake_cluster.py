"""The CRM stand-in's status intake on a real Redis Cluster: statuses applied, and the app stops.

Stopping used to cancel the intake's blocking ``XREADGROUP``; redis-py's cluster client may turn
that cancellation into a ``ConnectionError``, which the intake took for an outage and retried, so
it read on forever and the app's shutdown hung with it (in two of three runs
of a few start/stop cycles shortly after start-up). The intake now stops between reads when asked.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestServer

from contracts.crm_status import DeliveryStatus
from legacy_sim.crm import CrmConfig, build_crm_app
from legacy_sim.crm.intake import ORDER_KEY_PREFIX
from sharedstate.redis_spec import parse_redis_spec
from tests.support.redis_cluster_keys import ClusterNodes
from tests.support.waiting import eventually

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]  # 24 start/stop cycles, ~25 s
STATUS = "crm:orders:status:{crm:orders}"  # in the queue's slot, as the relay needs on Cluster


async def test_the_status_intake_applies_statuses_and_every_shutdown_ends_on_a_cluster(
        redis_cluster_nodes: ClusterNodes) -> None:
    client = parse_redis_spec(redis_cluster_nodes.spec, "spec").client()
    try:
        for cycle in range(24):
            order = f"CRM-{cycle:08d}"
            await client.hset(ORDER_KEY_PREFIX + order, mapping={"status": "QUEUED"})
            server = TestServer(build_crm_app(CrmConfig(redis_url=redis_cluster_nodes.spec,
                                                        status_stream=STATUS)), host="127.0.0.1")
            await server.start_server()
            status = DeliveryStatus(crm_order_id=order, mes_order_id=cycle + 1, delivered_at="t",
                                    delivered_by="mes-relay/mes-1")
            await client.xadd(STATUS, status.to_fields())  # type: ignore[arg-type]

            async def delivered(key: str = ORDER_KEY_PREFIX + order) -> bool:
                return await client.hget(key, "status") == b"DELIVERED"

            if cycle % 4 == 0:
                await eventually(delivered, timeout=15, what=f"{order} delivered")
            await asyncio.sleep(0.1 * (cycle % 6))  # stop at different points: start-up, the blocking read
            try:
                async with asyncio.timeout(20):  # a hang, not a speed: the read blocks for 1 s
                    await server.close()
            except TimeoutError:
                raise AssertionError(f"the CRM app did not stop (cycle {cycle})") from None
    finally:
        await client.aclose()
