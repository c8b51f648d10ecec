"""Order-change events on Redis: from proxied traffic, from the MES database, and with Redis down."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from contracts.order_events import CHANNEL, STREAM, OrderEvent, parse_event
from devstack.ports import free_port
from tests.integration.sidecar.sidecar_support import (
    ORDER,
    SidecarUnderTest,
    run_sidecar,
    running_mes,
    sample,
    sidecar_config,
    wait_for,
)

LABELS = {"kind": "mes", "legacy_instance": "mes-t"}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
async def mes_url(pg_dsn: str) -> AsyncIterator[str]:
    async with running_mes(pg_dsn) as url:
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def sidecar(mes_url: str, pg_dsn: str, redis_url: str, tmp_path: Path
                  ) -> AsyncIterator[SidecarUnderTest]:
    config = sidecar_config(mes_url, tmp_path, dsn=pg_dsn, redis_url=redis_url, history_poll_interval=0.05)
    async with run_sidecar(config) as sc:
        yield sc


async def stream_events(client: aioredis.Redis) -> list[OrderEvent]:
    entries: list[tuple[str, dict[str, str]]] = await client.xrange(STREAM)  # type: ignore[assignment]
    return [parse_event(fields) for _, fields in entries]


async def next_message(pubsub: Any, timeout: float = 5.0) -> OrderEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return parse_event(message["data"])
    raise TimeoutError("no pub/sub message")


async def post(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    async with session.post(url, **kwargs) as resp:
        assert resp.status in (200, 201), await resp.text()
        return dict(await resp.json())


async def test_changes_through_the_sidecar_are_published_once_on_stream_and_pubsub(
        sidecar: SidecarUnderTest, redis_client: aioredis.Redis) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(CHANNEL)
    dup_before = sample("sidecar_events_duplicates_total", **LABELS, source="db")
    async with aiohttp.ClientSession() as s:
        order = await post(s, f"{sidecar.url}/orders", json=ORDER)
        created = await next_message(pubsub)
        await post(s, f"{sidecar.url}/orders/{order['id']}/status", json={"status": "PRICE_CALCULATED"},
                   headers={"traceparent": TRACEPARENT})
        changed = await next_message(pubsub)
    assert (created.type, created.order_id, created.old_status, created.new_status, created.source) == \
        ("order.created", order["id"], None, "SUBMITTED", "proxy")
    assert (changed.type, changed.old_status, changed.new_status, changed.instance) == \
        ("order.status_changed", "SUBMITTED", "PRICE_CALCULATED", "mes-t")
    assert changed.traceparent == TRACEPARENT  # tracing off: the caller's context rides along
    # the history poller sees both rows too, and they are recognised as already published
    await wait_for(lambda: sample("sidecar_events_duplicates_total", **LABELS, source="db") - dup_before == 2)
    assert [e.new_status for e in await stream_events(redis_client)] == ["SUBMITTED", "PRICE_CALCULATED"]
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_changes_made_directly_on_the_mes_come_from_the_database_poller(
        sidecar: SidecarUnderTest, mes_url: str, redis_client: aioredis.Redis) -> None:
    def published() -> float:  # process-wide counter: other tests in this session add to it
        return sample("sidecar_events_published_total", **LABELS, type="order.status_changed", source="db")

    before = published()
    async with aiohttp.ClientSession() as s:
        order = await post(s, f"{mes_url}/orders", json=ORDER)  # bypasses the sidecar
        await post(s, f"{mes_url}/orders/{order['id']}/status", json={"status": "CANCELLED"})
    await wait_for(lambda: published() - before >= 1)
    events = await stream_events(redis_client)
    assert [(e.type, e.old_status, e.new_status, e.source) for e in events] == [
        ("order.created", None, "SUBMITTED", "db"), ("order.status_changed", "SUBMITTED", "CANCELLED", "db")]
    assert all(e.history_id is not None and e.order_id == order["id"] for e in events)
    assert events[0].history_id < events[1].history_id  # type: ignore[operator]


async def test_redis_down_never_fails_or_slows_proxied_requests(mes_url: str, tmp_path: Path) -> None:
    config = sidecar_config(mes_url, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    before = sample("sidecar_events_publish_errors_total", **LABELS)
    async with run_sidecar(config) as sc, aiohttp.ClientSession() as s:
        order = await post(s, f"{sc.url}/orders", json=ORDER)
        await post(s, f"{sc.url}/orders/{order['id']}/status", json={"status": "PRICE_CALCULATED"})
        await wait_for(lambda: sample("sidecar_events_publish_errors_total", **LABELS) > before)
        assert sample("sidecar_events_queued", **LABELS) == 2  # kept for when Redis is back
        async with s.get(f"{sc.admin}/readyz") as ready:
            assert ready.status == 200
            assert (await ready.json())["events"] == {"redis_ok": False}
