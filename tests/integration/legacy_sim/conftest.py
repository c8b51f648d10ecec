"""Fixtures for the legacy stand-ins: an MES and a CRM app on real PostgreSQL/Redis, port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from legacy_sim.crm import CrmConfig, build_crm_app
from legacy_sim.mes import build_mes_app
from tests.integration.legacy_sim.sim_support import JsonLog, mes_config
from tests.support.spans import Spans


@pytest.fixture
async def mes_client(pg_dsn: str) -> AsyncIterator[TestClient]:
    """A client of one MES instance on a fresh database."""
    async with TestClient(TestServer(build_mes_app(mes_config(pg_dsn)))) as client:
        yield client


@pytest.fixture
async def crm_client(redis_url: str) -> AsyncIterator[TestClient]:
    """A client of the CRM stand-in on a flushed Redis."""
    async with TestClient(TestServer(build_crm_app(CrmConfig(redis_url=redis_url)))) as client:
        yield client


@pytest.fixture
async def db(pg_dsn: str, mes_client: TestClient) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the MES database (schema applied by ``mes_client``)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A raw Redis client (bytes in, bytes out)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    """The ECS JSON lines the stand-ins log during the test."""
    with JsonLog() as log:
        yield log


@pytest.fixture
def spans() -> Iterator[Spans]:
    """An in-memory tracer provider (never installed globally) to pass as ``tracer_provider=``."""
    recorder = Spans("legacy-test")
    try:
        yield recorder
    finally:
        recorder.provider.shutdown()
