"""The "Since the last config load" panel (Gateway RED, Grafana and console page) reads the time
since the gateway started, not since 1970: the first load sets the gauge, with one or two workers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_upstream import FakeUpstream, fake_upstream
from tests.support.gateway import gateway_config, gateway_process

pytestmark = pytest.mark.timeout(60)
GAUGE = "gateway_config_last_reload_success_timestamp_seconds"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


@pytest.mark.parametrize("workers", [1, 2])
async def test_config_load_time_is_exported_from_start_up(
        tmp_path: Path, upstream: FakeUpstream, workers: int) -> None:
    route = {"name": "echo", "listener": "internal", "prefix": "/echo", "cluster": "mes"}
    cfg = gateway_config(tmp_path, clusters={"mes": {"endpoints": [upstream.url]}}, routes=[route])
    before = time.time()
    async with gateway_process(cfg, tmp_path, workers=workers) as gw, aiohttp.ClientSession() as s:
        text = await (await s.get(f"{gw.admin}/metrics")).text()
    values = [sample.value for family in text_string_to_metric_families(text) for sample in family.samples
              if sample.name == GAUGE]
    assert values, f"{GAUGE} not exported"
    assert max(values) >= before - 1
