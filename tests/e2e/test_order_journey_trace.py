"""One order's journey is one trace, across real processes: gateway → sidecar → legacy → queue.

Every process exports spans with the real OTLP/HTTP exporter to a receiver in this test.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess
from tests.support.gateway import GatewayUnderTest, gateway_process, legacy_pair_config
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(120)

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP SpanKind values
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


@dataclass
class Platform:
    gateway: GatewayUnderTest
    receiver: OtlpReceiver
    logs: Path


def _spawn(name: str, args: list[str], logs: Path, env: dict[str, str]) -> ServerProcess:
    proc = ServerProcess([sys.executable, *args], log_path=logs / f"{name}.out",
                         env={**env, "LOG_FILE": str(logs / f"{name}.log")})
    proc.start()
    return proc


@pytest.fixture
async def platform(tmp_path: Path, pg_dsn: str, redis_url: str) -> AsyncIterator[Platform]:
    receiver = await OtlpReceiver().start()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    logs = tmp_path / "logs"
    logs.mkdir()
    mes, crm, mes_sc, crm_sc = (free_port() for _ in range(4))
    procs = [
        _spawn("mes", ["-m", "legacy_sim", "mes", "--port", str(mes), "--dsn", pg_dsn,
                       "--instance-id", "mes-1", "--consume-crm", "--redis-url", redis_url], logs, env),
        _spawn("crm", ["-m", "legacy_sim", "crm", "--port", str(crm), "--redis-url", redis_url], logs, env),
        _sidecar("mes", listen=mes_sc, upstream=mes, logs=logs, env=env),
        _sidecar("crm", listen=crm_sc, upstream=crm, logs=logs, env=env),
    ]
    try:
        for port in (mes, crm, mes_sc, crm_sc):
            wait_for_port(port, timeout=30)
        cfg = legacy_pair_config(logs, mes_url=f"http://127.0.0.1:{mes_sc}", crm_url=f"http://127.0.0.1:{crm_sc}")
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint  # inherited by the gateway process
        os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "100"
        try:
            async with gateway_process(cfg, tmp_path) as gw:
                yield Platform(gateway=gw, receiver=receiver, logs=logs)
        finally:
            del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], os.environ["OTEL_BSP_SCHEDULE_DELAY"]
    finally:
        for proc in reversed(procs):
            proc.stop()
        await receiver.stop()


def _sidecar(kind: str, *, listen: int, upstream: int, logs: Path, env: dict[str, str]) -> ServerProcess:
    return _spawn(f"sidecar-{kind}", [
        "-m", "sidecar", "--kind", kind, "--instance-id", f"{kind}-1", "--listen", f"127.0.0.1:{listen}",
        "--admin", f"127.0.0.1:{free_port()}", "--upstream", f"http://127.0.0.1:{upstream}",
        "--access-log", str(logs / f"sidecar-{kind}-access.log")], logs, env)


async def _log_lines(logs: Path, request_id: str, services: set[str]) -> list[dict[str, object]]:
    """Lines carrying ``request_id``, once every service in ``services`` wrote one (logs are buffered)."""
    async with asyncio.timeout(10):
        while True:
            lines = [json.loads(line) for path in logs.glob("*.log")
                     for line in path.read_text().splitlines() if line.startswith("{")]
            mine = [line for line in lines if line.get("http.request.id") == request_id]
            if services <= {line["service.name"] for line in mine}:
                return mine
            await asyncio.sleep(0.1)


def _one(spans: list[ReceivedSpan], service: str, kind: int) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.kind == kind]
    assert found, f"no span of kind {kind} from {service}: {spans}"
    return found[0]


def _child_of(child: ReceivedSpan, parent: ReceivedSpan) -> None:
    assert child.parent_span_id == parent.span_id, f"{child.name} is not a child of {parent.name}"


async def test_an_operator_order_is_one_trace_through_gateway_sidecar_and_mes(platform: Platform) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            f"{platform.gateway.internal}/orders", headers={"traceparent": TRACEPARENT},
            json={"customer": "ACME", "material": "PLA", "quantity": 1, "model_name": "a.stl"}) as resp:
        assert resp.status == 201, await resp.text()
        request_id = resp.headers["X-Request-ID"]
        order_id = (await resp.json())["id"]
    spans = await platform.receiver.wait_for(CALLER_TRACE, {"gateway", "sidecar-mes", "legacy-mes"})
    gw_server, gw_client = _one(spans, "gateway", SERVER), _one(spans, "gateway", CLIENT)
    sc_server, sc_client = _one(spans, "sidecar-mes", SERVER), _one(spans, "sidecar-mes", CLIENT)
    mes_server = _one(spans, "legacy-mes", SERVER)
    assert gw_server.parent_span_id == "b7ad6b7169203331"
    _child_of(gw_client, gw_server)
    _child_of(sc_server, gw_client)
    _child_of(sc_client, sc_server)
    _child_of(mes_server, sc_client)
    # the request's log lines in three processes share the request id and the trace id
    mine = await _log_lines(platform.logs, request_id, {"gateway", "sidecar-mes", "legacy-mes"})
    assert {line.get("trace.id") for line in mine} == {CALLER_TRACE}
    assert any(line.get("order.id") == order_id for line in mine if line["service.name"] == "legacy-mes")


async def test_a_crm_order_stays_one_trace_through_the_queue_to_the_mes_consumer(platform: Platform) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            f"{platform.gateway.internal}/crm/orders", headers={"traceparent": TRACEPARENT},
            json={"customer": "ACME", "material": "PETG", "quantity": 2, "model_name": "b.stl"}) as resp:
        assert resp.status == 202, await resp.text()
    spans = await platform.receiver.wait_for(
        CALLER_TRACE, {"gateway", "sidecar-crm", "legacy-crm", "legacy-mes"})
    sc_client = _one(spans, "sidecar-crm", CLIENT)
    crm_server = _one(spans, "legacy-crm", SERVER)
    producer = _one(spans, "legacy-crm", PRODUCER)
    consumer = _one(spans, "legacy-mes", CONSUMER)
    _child_of(_one(spans, "sidecar-crm", SERVER), _one(spans, "gateway", CLIENT))
    _child_of(crm_server, sc_client)
    _child_of(producer, crm_server)
    _child_of(consumer, producer)
