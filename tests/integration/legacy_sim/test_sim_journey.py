"""What the stand-ins log is enough for order-journey: CRM intake → queue → MES order → status change."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from legacy_sim.crm import CrmConfig, build_crm_app
from legacy_sim.mes import build_mes_app
from legacy_sim.mes.crm_consumer import ConsumerConfig, CrmConsumer
from telemetry import EcsJsonFormatter
from telemetry.journey import LogFiles, collect_journey, render_journey
from tests.integration.legacy_sim.sim_support import ORDER, mes_config
from tests.support.spans import Spans


class _OnlyCrm(logging.Filter):
    def __init__(self, crm: bool) -> None:
        super().__init__()
        self.crm = crm

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("legacy_sim.crm") == self.crm


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    """The CRM's lines to crm.log, everything else to mes-1.log, as two processes would write them."""
    logger = logging.getLogger("legacy_sim")
    handlers = []
    for name, service, crm in (("crm.log", "legacy-crm", True), ("mes-1.log", "legacy-mes", False)):
        handler = logging.FileHandler(tmp_path / name, encoding="utf-8")
        handler.setFormatter(EcsJsonFormatter(service))
        handler.addFilter(_OnlyCrm(crm))
        logger.addHandler(handler)
        handlers.append(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield tmp_path
    finally:
        logger.setLevel(level)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


async def test_journey_of_a_crm_order_spans_both_stand_ins(pg_dsn: str, redis_url: str,
                                                           redis_client: aioredis.Redis, spans: Spans,
                                                           log_dir: Path) -> None:
    crm_app = build_crm_app(CrmConfig(redis_url=redis_url), tracer_provider=spans.provider)
    mes_app = build_mes_app(mes_config(pg_dsn), tracer_provider=spans.provider)
    async with TestClient(TestServer(crm_app)) as crm, TestClient(TestServer(mes_app)) as mes:
        assert (await crm.post("/orders", json=ORDER)).status == 202
        pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
        try:
            await CrmConsumer(redis_client, pool, ConsumerConfig(consumer="mes-1"),
                              tracer_provider=spans.provider).run_until_idle()
            order_id = await pool.fetchval("SELECT id FROM orders")
        finally:
            await pool.close()
        await mes.post(f"/orders/{order_id}/status", json={"status": "SHIPPED"})  # refused: 409
        await mes.post(f"/orders/{order_id}/status", json={"status": "CANCELLED"})

    journey = collect_journey(LogFiles([log_dir]), str(order_id))
    actions = [e.get("event.action") for e in journey.events]
    assert actions == ["crm-queue-write", "order-created", "crm-queue-read", "order-status-changed",
                       "api-error", "order-status-changed"]
    assert journey.values("service.name") == ["legacy-crm", "legacy-mes"]
    intake_trace = spans.named("crm:orders process").context.trace_id
    assert journey.values("trace.id")[0] == f"{intake_trace:032x}"
    assert journey.last_status() is not None
    assert "last status: CANCELLED" in render_journey(journey)
