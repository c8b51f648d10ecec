"""CRM → MES relay against a real MES (legacy app factory, real PostgreSQL) and a real Redis.

The MES runs in this loop with one extra outermost middleware that counts its own ``POST
/orders`` in flight (and can slow them down, or refuse some): what the relay's backpressure must
bound is what the MES sees, not what the relay believes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts.crm_envelope import CrmOrderMessage
from contracts.order_input import NewOrder
from devstack.ports import free_port
from legacy_sim.mes import MesConfig, build_mes_app
from sidecar.relay import CrmRelay, RelayConfig
from sidecar.relay.queue import RelayQueue
from telemetry import producer_span
from tests.integration.sidecar.sidecar_support import in_memory_tracing, run_sidecar, sample, sidecar_config
from tests.support.waiting import eventually

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class MesLoad:
    """What the MES itself sees of ``POST /orders`` (set ``delay`` to slow it down)."""

    in_flight: int = 0
    max_in_flight: int = 0
    posts: int = 0
    delay: float = 0.0

    def middleware(self) -> Any:
        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            if (request.method, request.path) != ("POST", "/orders"):
                return await handler(request)
            self.in_flight += 1
            self.posts += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
                return await handler(request)
            finally:
                self.in_flight -= 1
        return count


class Mes:
    """A real legacy MES app on a fixed port that can be stopped and started again."""

    def __init__(self, dsn: str, load: MesLoad, *, tracer_provider: Any = None) -> None:
        self.config = MesConfig(dsn=dsn, price_delay_s=0.0, pool_min_size=1, pool_max_size=10,
                                startup_wait_s=5.0, instance_id="mes-relay-t")
        self.load = load
        self.tracer_provider = tracer_provider
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = build_mes_app(self.config, tracer_provider=self.tracer_provider)
        app.middlewares.insert(0, self.load.middleware())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def mes(pg_dsn: str) -> AsyncIterator[Mes]:
    server = Mes(pg_dsn, MesLoad())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def relay_config(redis_url: str, **overrides: Any) -> RelayConfig:
    settings: dict[str, Any] = {"redis_url": redis_url, "consumer": "relay-a", "block_ms": 100,
                                "backoff_initial": 0.05, "backoff_max": 0.4, "lag_interval": 0.1,
                                "drain_timeout": 0.0}
    settings.update(overrides)
    return RelayConfig(**settings)


@asynccontextmanager
async def running_relay(config: RelayConfig, mes_url: str, *, instance: str,
                        tracer_provider: Any = None,
                        patch: Callable[[CrmRelay], None] | None = None) -> AsyncIterator[CrmRelay]:
    """A relay task in this loop; leaving the block cancels it like a crash (``drain_timeout`` 0)."""
    async with AsyncExitStack() as stack:
        client = aioredis.Redis.from_url(config.redis_url)
        stack.push_async_callback(client.aclose)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        relay = CrmRelay(client, session, mes_url, config, instance=instance, tracer_provider=tracer_provider)
        if patch is not None:
            patch(relay)
        task = asyncio.create_task(relay.run())
        try:
            yield relay
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def crm_burst(client: aioredis.Redis, count: int, *, first: int = 1, customer: str = "Acme GmbH",
                    traceparent: str | None = None) -> list[str]:
    """XADD ``count`` envelopes in one pipeline, as a CRM peak; returns the CRM order ids."""
    ids = [f"CRM-{n:08d}" for n in range(first, first + count)]
    async with client.pipeline(transaction=False) as pipe:
        for crm_id in ids:
            order = NewOrder(customer=customer, material="PLA", quantity=1, model_name=f"{crm_id}.stl")
            fields = CrmOrderMessage(crm_order_id=crm_id, order=order, submitted_at="2026-01-01T00:00:00Z",
                                     traceparent=traceparent).to_fields()
            pipe.xadd("crm:orders", fields)  # type: ignore[arg-type]
        await pipe.execute()
    return ids


async def crm_orders_in_mes(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT count(*), count(DISTINCT external_ref) FROM orders "
                                  "WHERE source = 'crm'")
    finally:
        await conn.close()
    assert row is not None
    return int(row[0]), int(row[1])


async def group_pending(client: aioredis.Redis, group: str = "mes-relay") -> int:
    return int((await client.xpending("crm:orders", group))["pending"])



def all_delivered(dsn: str, client: aioredis.Redis, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await crm_orders_in_mes(dsn) == (count, count) and await group_pending(client) == 0
    return check


# ---------------------------------------------------------------------------- backpressure


@pytest.mark.slow
async def test_burst_of_1000_orders_never_exceeds_the_limit_at_the_mes_and_arrives_exactly_once(
        mes: Mes, redis_client: aioredis.Redis, redis_url: str, pg_dsn: str) -> None:
    mes.load.delay = 0.02  # a slow MES: every order takes 20 ms more
    config = relay_config(redis_url, initial_in_flight=8, max_in_flight=8)
    await crm_burst(redis_client, 1000)
    async with running_relay(config, mes.url, instance="relay-burst") as relay:
        await eventually(all_delivered(pg_dsn, redis_client, 1000), timeout=45, what="1000 orders delivered")
        assert relay.limiter.in_flight == 0
    print(f"\nMES max in flight {mes.load.max_in_flight} (max_limit 8), POST /orders {mes.load.posts}, "
          f"relay {relay.stats}")
    assert 2 <= mes.load.max_in_flight <= config.max_in_flight
    assert relay.stats.created == 1000
    assert sample("sidecar_relay_deliveries_total", legacy_instance="relay-burst", outcome="created") == 1000
    assert await crm_orders_in_mes(pg_dsn) == (1000, 1000)


@pytest.mark.slow
async def test_the_in_flight_limit_shrinks_when_the_mes_gets_slower(
        mes: Mes, redis_client: aioredis.Redis, redis_url: str, pg_dsn: str) -> None:
    mes.load.delay = 0.01
    # one latency sample per 0.1 s instead of 1 s: the baseline (10 samples) is learnt within a second
    config = relay_config(redis_url, initial_in_flight=16, max_in_flight=16, limit_sample_window=0.1)
    await crm_burst(redis_client, 400)
    async with running_relay(config, mes.url, instance="relay-adapt") as relay:
        await eventually(all_delivered(pg_dsn, redis_client, 400), timeout=20, what="400 fast orders")
        fast_limit = relay.limiter.limit
        mes.load.delay = 0.3  # the MES slows down 30-fold
        await crm_burst(redis_client, 400, first=401)

        async def halved() -> bool:
            return relay.limiter.limit <= fast_limit // 2
        await eventually(halved, timeout=10, what=f"limit down to {fast_limit // 2}")
        assert sample("sidecar_relay_limit", legacy_instance="relay-adapt") <= fast_limit // 2
        await asyncio.sleep(0.4)  # deliveries admitted under the old limit finish (0.3 s each)
        mes.load.max_in_flight = 0
        await asyncio.sleep(1.0)
        slow_limit = relay.limiter.limit
    print(f"\nlimit with a fast MES {fast_limit}, after it slowed down {slow_limit}; "
          f"MES max in flight since {mes.load.max_in_flight}")
    assert fast_limit == 16
    assert 1 <= mes.load.max_in_flight <= fast_limit // 2
    count, distinct = await crm_orders_in_mes(pg_dsn)
    assert count == distinct


async def test_mes_down_pauses_the_relay_which_resumes_by_itself_and_loses_nothing(
        mes: Mes, redis_client: aioredis.Redis, redis_url: str, pg_dsn: str, tmp_path: Path) -> None:
    relay = relay_config(redis_url, consumer="mes-t", failure_threshold=3, max_in_flight=4,
                         initial_in_flight=4, delivery_timeout=1.0)
    config = sidecar_config(mes.url, tmp_path, relay=relay)

    def paused() -> float:
        return sample("sidecar_relay_paused", legacy_instance="mes-t")

    def pauses() -> float:
        return sample("sidecar_relay_pauses_total", legacy_instance="mes-t")

    pauses_before = pauses()
    async with run_sidecar(config) as sc:
        await crm_burst(redis_client, 10)
        await eventually(all_delivered(pg_dsn, redis_client, 10), timeout=10, what="first 10 delivered")
        await mes.stop()
        posts_before_outage = mes.load.posts
        await crm_burst(redis_client, 40, first=11)

        async def is_paused() -> bool:
            return paused() == 1.0 and pauses() >= pauses_before + 2  # paused, and a probe failed
        await eventually(is_paused, timeout=10, what="relay paused and probing")
        async with aiohttp.ClientSession() as http, http.get(f"{sc.admin}/readyz") as resp:
            assert (await resp.json())["relay"]["paused"] is True
        assert await crm_orders_in_mes(pg_dsn) == (10, 10)  # the 40 wait in Redis

        await mes.start()
        await eventually(all_delivered(pg_dsn, redis_client, 50), timeout=15, what="all 50 after restart")
        assert paused() == 0.0
    assert await crm_orders_in_mes(pg_dsn) == (50, 50)
    assert mes.load.posts - posts_before_outage >= 40


# ---------------------------------------------------------------------------- crash before XACK


@pytest.mark.parametrize("restart_as", ["relay-a", "relay-b"])
async def test_delivered_but_not_acked_is_redelivered_without_a_duplicate(
        mes: Mes, redis_client: aioredis.Redis, redis_url: str, pg_dsn: str, restart_as: str) -> None:
    def lose_acks(relay: CrmRelay) -> None:
        async def no_ack(entry_id: str, status: object = None) -> None:  # "dies" between 201 and XACK
            return None
        relay.queue.ack = no_ack  # type: ignore[method-assign]
        relay.queue.ack_delivered = no_ack  # type: ignore[method-assign]

    crashed = relay_config(redis_url, sweep_interval=60.0, reclaim_idle=60.0)
    await crm_burst(redis_client, 30)
    async with running_relay(crashed, mes.url, instance="relay-crash", patch=lose_acks):
        async def created() -> bool:
            return await crm_orders_in_mes(pg_dsn) == (30, 30)
        await eventually(created, timeout=10, what="30 orders created")
    assert await group_pending(redis_client) == 30  # all delivered, none acknowledged

    # same name: its own pending entries at start; another name: XAUTOCLAIM once they are idle 1 s
    survivor = relay_config(redis_url, consumer=restart_as, reclaim_idle=1.0, delivery_timeout=0.9)
    posts = mes.load.posts
    async with running_relay(survivor, mes.url, instance=f"relay-{restart_as}-2") as relay:
        await eventually(all_delivered(pg_dsn, redis_client, 30), timeout=10, what="30 acked")
    assert (relay.stats.created, relay.stats.duplicates, relay.stats.redelivered) == (0, 30, 30)
    assert mes.load.posts - posts == 30
    source = "own" if restart_as == "relay-a" else "claimed"
    assert sample("sidecar_relay_redeliveries_total", legacy_instance=f"relay-{restart_as}-2",
                  source=source) == 30
    assert await crm_orders_in_mes(pg_dsn) == (30, 30)


# ---------------------------------------------------------------------------- dead letters, lag, traces


async def blocking_mes() -> AsyncIterator[str]:
    """A stand-in MES that refuses one customer with 422 (a rule the CRM does not know)."""
    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        if body["customer"] == "Blocked Ltd":
            return web.json_response({"title": "Unprocessable Content", "status": 422,
                                      "detail": "customer is blocked"}, status=422)
        return web.json_response({"id": 1, **body}, status=201)

    app = web.Application()
    app.router.add_post("/orders", create)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_poison_and_rejected_orders_are_dead_lettered_with_a_reason_and_acked(
        redis_client: aioredis.Redis, redis_url: str) -> None:
    await redis_client.xadd("crm:orders", {"v": "2", "crm_order_id": "CRM-X1", "payload": "{}"})
    await redis_client.xadd("crm:orders", {"v": "1", "crm_order_id": "CRM-X2", "payload": "not json"})
    await crm_burst(redis_client, 1, first=900, customer="Blocked Ltd")
    await crm_burst(redis_client, 5)
    async with asynccontextmanager(blocking_mes)() as mes_url, \
            running_relay(relay_config(redis_url), mes_url, instance="relay-dead") as relay:
        async def settled() -> bool:
            return relay.stats.created == 5 and await group_pending(redis_client) == 0
        await eventually(settled, timeout=10, what="good orders delivered, all acked")
    dead: Any = await redis_client.xrange("crm:orders:dead")
    reasons = {fields[b"crm_order_id"].decode(): fields[b"dl_reason"].decode() for _, fields in dead}
    assert set(reasons) == {"CRM-X1", "CRM-X2", "CRM-00000900"}
    assert "unsupported envelope version" in reasons["CRM-X1"]
    assert "payload is not JSON" in reasons["CRM-X2"]
    assert reasons["CRM-00000900"] == "MES answered 422: customer is blocked"
    assert all(fields[b"dl_consumer"] == b"mes-relay/relay-a" for _, fields in dead)
    assert relay.stats.dead_lettered == 3
    assert sample("sidecar_relay_dead_letters_total", legacy_instance="relay-dead", reason="poison") == 2
    assert sample("sidecar_relay_dead_letters_total", legacy_instance="relay-dead", reason="rejected") == 1


async def test_queue_lag_reports_length_undelivered_pending_and_oldest_age(
        redis_client: aioredis.Redis, redis_url: str) -> None:
    config = relay_config(redis_url)
    queue = RelayQueue(redis_client, config)
    await queue.ensure_group()
    await crm_burst(redis_client, 5)
    await queue.read_new(2, 100)
    await asyncio.sleep(0.05)
    lag = await queue.lag()
    assert (lag.length, lag.lag, lag.pending) == (5, 3.0, 2)
    assert 0.05 <= lag.oldest_pending_age < 5


async def test_the_crm_trace_continues_through_the_relay_into_the_mes(
        pg_dsn: str, redis_client: aioredis.Redis, redis_url: str) -> None:
    provider, exporter = in_memory_tracing()
    mes = Mes(pg_dsn, MesLoad(), tracer_provider=provider)
    await mes.start()
    try:
        carrier: dict[str, str] = {}
        with producer_span("crm:orders publish", carrier, tracer_provider=provider) as producer:
            await crm_burst(redis_client, 1, traceparent=carrier["traceparent"])
        async with running_relay(relay_config(redis_url), mes.url, instance="relay-trace",
                                 tracer_provider=provider):
            await eventually(all_delivered(pg_dsn, redis_client, 1), timeout=10, what="order delivered")
    finally:
        await mes.stop()
    spans = exporter.get_finished_spans()
    (consumer,) = [s for s in spans if s.name == "crm:orders process"]
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.get_span_context().span_id
    (client,) = [s for s in spans if s.kind.name == "CLIENT"]
    (server,) = [s for s in spans if s.kind.name == "SERVER"]
    assert client.parent is not None
    assert client.parent.span_id == consumer.context.span_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert {consumer.context.trace_id, client.context.trace_id, server.context.trace_id} == {
        producer.get_span_context().trace_id}


async def test_mes_creates_crm_orders_idempotently_over_http(mes: Mes) -> None:
    order = {"customer": "Acme", "material": "PLA", "quantity": 1, "model_name": "a.stl"}
    async with aiohttp.ClientSession() as http:
        answers = []
        for body in ({**order, "source": "crm", "external_ref": "CRM-1"},
                     {**order, "source": "crm", "external_ref": "CRM-1"},
                     {**order, "external_ref": "CRM-1"},  # b2b: another idempotency space
                     {**order, "source": "crm"},
                     {**order, "source": "erp", "external_ref": "E-1"}):
            async with http.post(f"{mes.url}/orders", json=body) as resp:
                answers.append((resp.status, (await resp.json()).get("source")))
    assert answers == [(201, "crm"), (200, "crm"), (201, "b2b"), (422, None), (422, None)]

