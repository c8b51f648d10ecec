"""Never stale after a change: real MES + sidecar (events) + Redis + gateway with the shared cache.

Readers poll order lists and orders through the gateway while statuses change — through the
gateway, and directly on the MES (the sidecar's database poller publishes those). A read sent
more than 1 s after a change was acknowledged must show that change (lifecycle order: a status
before the acknowledged one is stale). TTLs are long on purpose: only invalidation keeps it fresh.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from contracts.lifecycle import FORWARD_PATH_NAMES as FORWARD_PATH
from contracts.order_events import CHANNEL, OrderEvent
from sidecar.events import EventPublisher
from tests.integration.sidecar.sidecar_support import ORDER, run_sidecar, running_mes, sidecar_config
from tests.support.gateway import GatewayUnderTest, gateway_config, run_gateway

RANK = {s: i for i, s in enumerate(FORWARD_PATH)}
LIST = {"status": None, "page": 1, "per_page": 50}


def _gateway_cfg(tmp_path: Path, endpoint: str, redis_url: str) -> dict[str, Any]:
    route = {"name": "orders", "listener": "internal", "prefix": "/orders", "methods": ["GET", "POST"],
             "cluster": "mes", "cache": {"ttl": 60, "stale_while_revalidate": 60, "stale_if_error": 60,
                                         "key_params": LIST}}
    return gateway_config(tmp_path, clusters={"mes": {"endpoints": [endpoint], "retry": {"attempts": 0}}},
                          routes=[route], cache={"backend": "redis", "redis_url": redis_url})


@pytest.fixture
async def mes_url(pg_dsn: str) -> AsyncIterator[str]:
    async with running_mes(pg_dsn) as url:
        yield url


class StaleChecker:
    """Acknowledged changes, and reads checked against them (1 s grace after the acknowledgement)."""

    def __init__(self) -> None:
        self.acked: dict[int, list[tuple[float, str]]] = {}
        self.reads = self.checked = self.stale = 0

    def ack(self, order_id: int, status: str) -> None:
        self.acked.setdefault(order_id, []).append((time.monotonic(), status))

    def check(self, sent_at: float, orders: list[dict[str, Any]]) -> None:
        self.reads += 1
        for order in orders:
            due = [s for t, s in self.acked.get(order["id"], []) if t + 1.0 <= sent_at]
            if due:
                self.checked += 1
                self.stale += RANK[order["status"]] < RANK[due[-1]]


async def _reader(s: aiohttp.ClientSession, gw: str, ids: list[int], checker: StaleChecker,
                  stop: asyncio.Event) -> None:
    statuses = itertools.cycle([None, *FORWARD_PATH[:4]])
    while not stop.is_set():
        status = next(statuses)
        url = f"{gw}/orders" + (f"?status={status}" if status else "")
        sent = time.monotonic()
        async with s.get(url) as resp:
            checker.check(sent, (await resp.json())["items"])
        sent = time.monotonic()
        async with s.get(f"{gw}/orders/{random.choice(ids)}") as resp:
            checker.check(sent, [await resp.json()])
        await asyncio.sleep(0.01)


async def test_no_read_is_stale_one_second_after_a_change_through_the_gateway_or_on_the_mes(
        tmp_path: Path, mes_url: str, pg_dsn: str, redis_url: str) -> None:
    sc_cfg = sidecar_config(mes_url, tmp_path, dsn=pg_dsn, redis_url=redis_url, history_poll_interval=0.2)
    async with run_sidecar(sc_cfg) as sidecar, aiohttp.ClientSession() as s:
        ids = []
        for _ in range(12):
            async with s.post(f"{mes_url}/orders", json=ORDER) as resp:
                ids.append((await resp.json())["id"])
        async with run_gateway(_gateway_cfg(tmp_path, sidecar.url, redis_url), tmp_path) as gw:
            checker, stop = StaleChecker(), asyncio.Event()
            hits_before = REGISTRY.get_sample_value("gateway_cache_requests_total",
                                                    {"route": "orders", "result": "hit"}) or 0.0
            readers = [asyncio.create_task(_reader(s, gw.internal, ids, checker, stop)) for _ in range(4)]
            for step in range(3):  # every order moves 3 steps, alternating the path of the change
                for n, order_id in enumerate(ids):
                    base = gw.internal if (n + step) % 2 else mes_url
                    status = FORWARD_PATH[step + 1]
                    async with s.post(f"{base}/orders/{order_id}/status", json={"status": status}) as resp:
                        assert resp.status == 200, await resp.text()
                    checker.ack(order_id, status)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # reads after the last grace period
            stop.set()
            await asyncio.gather(*readers)
            hits = (REGISTRY.get_sample_value("gateway_cache_requests_total",
                                              {"route": "orders", "result": "hit"}) or 0.0) - hits_before
    print(f"reads={checker.reads} checked={checker.checked} stale={checker.stale} hits={hits:.0f}")
    assert checker.checked > 200, "the readers must see changed orders"
    assert hits > 100, "the cache must actually serve reads"
    assert checker.stale == 0


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _invalidations(reason: str) -> float:
    return REGISTRY.get_sample_value("gateway_cache_invalidations_total", {"reason": reason}) or 0.0


async def _status(s: aiohttp.ClientSession, gw: GatewayUnderTest, path: str) -> str:
    async with s.get(f"{gw.internal}{path}") as resp:
        return resp.headers["Cache-Status"]


async def test_an_event_published_like_the_sidecar_does_invalidates_within_a_second(
        tmp_path: Path, mes_url: str, redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    publisher = EventPublisher(client, kind="mes", instance="mes-t")
    publisher.start()
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{mes_url}/orders", json=ORDER) as resp:
            order = await resp.json()
        async with run_gateway(_gateway_cfg(tmp_path, mes_url, redis_url), tmp_path) as gw:
            await _until(lambda: REGISTRY.get_sample_value("gateway_cache_events_connected") == 1)
            await _status(s, gw, "/orders?status=SUBMITTED")
            assert (await _status(s, gw, "/orders?status=SUBMITTED")).startswith("mes-edge; hit")
            before = _invalidations("event")
            publisher.submit(OrderEvent(type="order.status_changed", order_id=order["id"],
                                        old_status="SUBMITTED", new_status="PRICE_CALCULATED",
                                        occurred_at="2026-03-02T10:15:04+00:00", source="db",
                                        instance="mes-t"))
            await _until(lambda: _invalidations("event") > before, timeout=1.0)
            assert (await _status(s, gw, "/orders?status=SUBMITTED")).startswith("mes-edge; fwd=miss;")
            assert (await _status(s, gw, "/orders?status=SHIPPED")).startswith("mes-edge; fwd=uri-miss")
    await publisher.aclose()
    await client.aclose()


def _rejected(reason: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_cache_events_rejected_total", {"reason": reason})


def _counted(reason: str, *, above: float) -> Callable[[], bool]:
    return lambda: (_rejected(reason) or 0.0) > above


async def test_an_event_it_cannot_read_is_counted_by_reason_logged_and_invalidates_everything(
        tmp_path: Path, mes_url: str, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    event = OrderEvent(type="order.status_changed", order_id=1, old_status="SUBMITTED",
                       new_status="PRICE_CALCULATED", occurred_at="2026-03-02T10:15:04+00:00", source="db",
                       instance="mes-t").to_dict()
    unreadable = {"unknown_version": {**event, "v": 2},
                  "missing_version": {k: v for k, v in event.items() if k != "v"},
                  "malformed": {"v": 1, "type": "order.status_changed"}}
    client = aioredis.Redis.from_url(redis_url)
    async with run_gateway(_gateway_cfg(tmp_path, mes_url, redis_url), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        await _until(lambda: REGISTRY.get_sample_value("gateway_cache_events_connected") == 1)
        for reason, message in unreadable.items():
            before = _rejected(reason)
            assert before is not None, f"{reason}: the series exists at 0 from start-up"
            await _status(s, gw, "/orders?status=SHIPPED")
            assert (await _status(s, gw, "/orders?status=SHIPPED")).startswith("mes-edge; hit")
            await client.publish(CHANNEL, json.dumps(message))
            await _until(_counted(reason, above=before), timeout=1.0)
            # an order of any status may have changed: nothing cached before is served
            assert (await _status(s, gw, "/orders?status=SHIPPED")).startswith("mes-edge; fwd=miss;")
            assert f"unreadable order event ({reason})" in caplog.text
        assert REGISTRY.get_sample_value("gateway_cache_events_connected") == 1  # still listening
    await client.aclose()


async def test_a_lost_subscription_bypasses_then_invalidates_everything_on_reconnect(
        tmp_path: Path, mes_url: str, redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    async with run_gateway(_gateway_cfg(tmp_path, mes_url, redis_url), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        await _until(lambda: REGISTRY.get_sample_value("gateway_cache_events_connected") == 1)
        await _status(s, gw, "/orders")
        before = _invalidations("subscribe")
        await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await _until(lambda: _invalidations("subscribe") > before)
        assert (await _status(s, gw, "/orders")).startswith("mes-edge; fwd=miss;")
    await client.aclose()
