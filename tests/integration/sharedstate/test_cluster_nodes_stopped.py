"""Shared-state users with Redis Cluster nodes SIGKILLed: they degrade or retry, never 500 or end a loop.

redis-py raises ``RedisClusterException`` — not a ``RedisError`` — when no node of a Cluster
answers; every user catches ``sharedstate.errors.REDIS_ERRORS``. Covered here (the rate limiter and
the cache have their own tests): the quote API of the gateway (503 problem+json), its queue probe,
the pricing worker loop and webhook notifier, the sidecar's event publisher and relay, the CRM stand-in (its
status intake and its order intake's 503). And with one primary gone (and
``cluster-require-full-coverage no``), the pricing queue's other shards are still served.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from contracts.order_events import OrderEvent
from contracts.webhook_secrets import WebhookSecretStore
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue_state import probe_forever
from legacy_adapters.redis_keys import shard_of_owner
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, SubmitSettings
from legacy_adapters.webhooks import WebhookNotifier
from legacy_sim.crm import CrmConfig, build_crm_app
from legacy_sim.pricing.samples import box_stl_binary
from sharedstate.errors import REDIS_ERRORS
from sharedstate.redis_spec import parse_redis_spec
from sidecar.events import EventPublisher
from sidecar.relay import RelayConfig
from sidecar.relay.relay import CrmRelay
from tests.integration.legacy_adapters.pricing_support import distinct_models, submit_checked
from tests.integration.legacy_adapters.test_sharded_queue import Recorder, fields
from tests.support.gateway import gateway_config, run_gateway
from tests.support.redis_cluster_keys import redis_cluster
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
SHARDS = 8


def kill_node(port: int) -> None:
    """SIGKILL the redis-server on ``port`` (the fixture stops the rest by PID at the end)."""
    info = subprocess.run(["redis-cli", "-p", str(port), "INFO", "server"], capture_output=True, text=True,
                          check=True, timeout=10).stdout
    os.kill(int(info.split("process_id:")[1].split()[0]), signal.SIGKILL)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _at_least(name: str, value: float, **labels: str) -> bool:
    return sample(name, **labels) >= value


async def test_with_every_node_stopped_no_user_answers_500_or_ends_its_loop(tmp_path: Path) -> None:
    with redis_cluster(tmp_path / "cluster") as nodes:
        route = {"name": "quotes", "listener": "internal", "prefix": "/quotes", "methods": ["GET", "POST"],
                 "handler": "quotes", "max_body_bytes": 4096}
        quotes = {"redis_url": nodes.spec, "shards": 2, "probe_interval": 0.2}
        config = gateway_config(tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
                                routes=[route], quotes=quotes)
        queue = ShardedQueue.from_url(nodes.spec, shards=2)
        await queue.ensure_group()
        events = parse_redis_spec(nodes.spec, "spec").client(socket_timeout=1.0)
        publisher = EventPublisher(events, kind="mes", instance="stopped-test")
        session = aiohttp.ClientSession()
        relay = CrmRelay(events, session, "http://127.0.0.1:9", RelayConfig(
            redis_url=nodes.spec, consumer="relay-stopped", block_ms=100, lag_interval=0.1,
            backoff_initial=0.05, backoff_max=0.4, dead_letter_stream="crm:orders:dead:{crm:orders}",
            status_stream="crm:orders:status:{crm:orders}"), instance="stopped-test")
        secrets = WebhookSecretStore(tmp_path / "webhook-secrets.json")
        stop = asyncio.Event()
        crm = TestServer(build_crm_app(CrmConfig(redis_url=nodes.spec, health_timeout_s=0.5)),
                         host="127.0.0.1")
        async with run_gateway(config, tmp_path) as gw:
            await crm.start_server()
            publisher.start()
            tasks = {"worker": asyncio.create_task(QuoteWorker(queue, Recorder(), WorkerSettings(
                         name="w", block_ms=100, visibility_timeout=2)).run(stop)),
                     "webhooks": asyncio.create_task(WebhookNotifier(queue, secrets).run(stop)),
                     "probe": asyncio.create_task(probe_forever(queue, 10, interval=0.1)),
                     "relay": asyncio.create_task(relay.run())}
            try:
                for port in nodes.ports:
                    kill_node(port)
                probe_errors = sample("pricing_queue_probe_errors_total")
                intake_failures = sample("orders_crm_status_updates_total", outcome="failure")
                relay_errors = sample("sidecar_relay_queue_errors_total", legacy_instance="stopped-test")
                async with aiohttp.ClientSession() as s:
                    async with s.post(f"{gw.internal}/quotes?material=PLA", data=box_stl_binary(),
                                      headers={"Content-Type": "model/stl"}) as resp:
                        assert resp.status == 503
                        body = await resp.json()
                        assert body["type"].endswith("pricing-queue-unavailable"), body
                    async with s.get(f"{gw.internal}/quotes/1-{'a' * 32}") as resp:
                        assert resp.status == 503
                    async with s.post(f"{crm.make_url('/orders')}", json={
                            "customer": "Acme GmbH", "material": "PLA", "quantity": 1,
                            "model_name": "x.stl"}) as resp:
                        assert resp.status == 503  # the CRM stand-in's order intake
                publisher.submit(OrderEvent(type="order.created", order_id=1, old_status=None,
                                            new_status="SUBMITTED", occurred_at="2026-12-05T06:00:00+00:00",
                                            source="proxy", instance="stopped-test"))
                await eventually(lambda: _at_least("pricing_queue_probe_errors_total", probe_errors + 3),
                                 timeout=30, what="the probe counting failed readings")
                await eventually(lambda: _at_least("orders_crm_status_updates_total", intake_failures + 1,
                                                   outcome="failure"), timeout=30, what="CRM intake failed")
                await eventually(lambda: _false(publisher.connected), timeout=30, what="publisher retries")
                await eventually(lambda: _at_least("sidecar_relay_queue_errors_total", relay_errors + 3,
                                                   legacy_instance="stopped-test"), timeout=30,
                                 what="the relay counting its queue errors")
                assert publisher.queued  # kept for when Redis is back
                assert [name for name, task in tasks.items() if task.done()] == []  # every loop goes on
            finally:
                stop.set()
                tasks["probe"].cancel()
                tasks["relay"].cancel()
                results = await asyncio.gather(*tasks.values(), return_exceptions=True)
                await publisher.aclose(flush_timeout=0.1)
                await session.close()
                await crm.close()
                await events.aclose()
                await queue.aclose()
        assert [r for r in results if not isinstance(r, asyncio.CancelledError) and r is not None] == []


async def _false(value: bool) -> bool:
    return not value


async def test_a_stopped_primary_stops_only_its_own_shards_of_the_pricing_queue(tmp_path: Path) -> None:
    with redis_cluster(tmp_path / "cluster") as nodes:
        for port in nodes.ports:  # serve the slots that are covered (the default stops every node)
            subprocess.run(["redis-cli", "-p", str(port), "CONFIG", "SET", "cluster-require-full-coverage",
                            "no"], check=True, capture_output=True, timeout=10)
        queue = ShardedQueue.from_url(nodes.spec, shards=SHARDS)
        try:
            await queue.ensure_group()
            owners: dict[int, str] = {}
            for i in range(2000):
                owners.setdefault(shard_of_owner(f"p{i}", SHARDS), f"p{i}")
            submitter = QuoteSubmitter(queue, SubmitSettings(backlog_bound=100))
            model = distinct_models(1)[0]
            requests = {s: QuoteRequest(model=model, material="PLA", owner=o) for s, o in owners.items()}
            jobs = {s: (await submit_checked(submitter, r)).job_id for s, r in requests.items()}
            port_of = {s: _port(queue, s) for s in jobs}
            victim = port_of[0]
            alive = {s: j for s, j in jobs.items() if port_of[s] != victim}
            assert alive
            assert len(alive) < len(jobs)
            kill_node(victim)
            stop = asyncio.Event()
            worker = asyncio.create_task(QuoteWorker(queue, Recorder(), WorkerSettings(
                name="w", block_ms=100, visibility_timeout=2)).run(stop))
            try:
                await eventually(lambda: _done(queue, alive.values()), timeout=60,
                                 what="every job of the shards on live primaries priced")
                assert not worker.done()
            finally:
                stop.set()
                await worker
        finally:
            await queue.aclose()


def _port(queue: ShardedQueue, shard: int) -> int:
    node: Any = queue.redis.get_node_from_key(queue.shards[shard].keys.stream)  # type: ignore[union-attr]
    return int(node.port)


async def _done(queue: ShardedQueue, job_ids: Any) -> bool:
    try:
        return await fields(queue, job_ids, "status") == {"done"}
    except REDIS_ERRORS:  # redis-py may re-read the slot map from the dead node for any command
        return False

