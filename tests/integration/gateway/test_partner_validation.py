"""The partner API document is the contract the gateway enforces (``gateway/filters/contract.py``):
a real ``python -m gateway`` process in front of a fake MES that counts what reaches it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from tests.security.edge_support import edge_config, partner_edge, read_problem
from tests.support.fake_upstream import FakeUpstream, fake_upstream
from tests.support.gateway import run_gateway
from tests.support.partner_edge import make_keys
from tests.support.spans import Spans
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)
NEW_ORDER = {"customer": "ACME GmbH", "material": "PLA", "quantity": 2, "model_name": "bracket.stl"}


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[tuple[Any, dict[str, str], FakeUpstream]]:
    async with fake_upstream() as mes, partner_edge(tmp_path, mes.url) as (gw, keys):
        yield gw, keys, mes


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_every_query_violation_is_listed_with_its_pointer_and_nothing_reaches_the_mes(
        edge: Any) -> None:
    gw, keys, mes = edge
    async with aiohttp.ClientSession() as s, s.get(
            f"{gw.external}/partner/v1/orders?page=0&per_page=x&status=LOST&sort=id",
            headers=_as(keys["acme"])) as r:
        body = await read_problem(r, 400)  # an unknown parameter makes the request malformed
    assert mes.hits == 0
    assert body["invalid_params"] == [
        {"name": "sort", "in": "query", "pointer": "/sort", "reason": "is not a parameter of this operation"},
        {"name": "status", "in": "query", "pointer": "/status", "reason":
         "must be one of SUBMITTED, PRICE_CALCULATED, MANUFACTURING_APPROVED, MANUFACTURING_STARTED, "
         "MANUFACTURING_COMPLETED, SHIPPED, CLOSED, CANCELLED"},
        {"name": "page", "in": "query", "pointer": "/page", "reason": "must be at least 1"},
        {"name": "per_page", "in": "query", "pointer": "/per_page", "reason": "must be of type integer"}]
    assert body["detail"].startswith("4 violations of the partner API document")


async def test_every_body_violation_is_a_422_with_json_pointers(edge: Any) -> None:
    gw, keys, mes = edge
    order = {"customer": " ", "material": "WOOD", "quantity": 100001, "model_sha256": "xyz"}
    async with aiohttp.ClientSession() as s, s.post(f"{gw.external}/partner/v1/orders", json=order,
                                                    headers=_as(keys["acme"])) as r:
        body = await read_problem(r, 422)
    assert mes.hits == 0
    assert body["type"].endswith("/validation-failed")
    assert {(p["in"], p["pointer"]) for p in body["invalid_params"]} == {
        ("body", "/customer"), ("body", "/material"), ("body", "/quantity"), ("body", "/model_sha256"),
        ("body", "/model_name")}
    missing = next(p for p in body["invalid_params"] if p["pointer"] == "/model_name")
    assert missing == {"name": "model_name", "in": "body", "pointer": "/model_name", "reason": "is required"}
    assert all("WOOD" not in p["reason"] for p in body["invalid_params"])  # values are never echoed


async def test_an_undeclared_method_is_405_with_the_documents_allow(edge: Any) -> None:
    gw, keys, _ = edge
    async with aiohttp.ClientSession() as s:
        for method, path, allow in (("PUT", "/orders", "GET, HEAD, POST"),
                                    ("DELETE", "/orders/7", "GET, HEAD"), ("POST", "/orders/7", "GET, HEAD"),
                                    ("OPTIONS", "/orders", "GET, HEAD, POST"), ("GET", "/quotes", "POST"),
                                    ("POST", "/quotes/" + "a" * 32, "GET, HEAD")):
            async with s.request(method, f"{gw.external}/partner/v1{path}", headers=_as(keys["acme"])) as r:
                await read_problem(r, 405)
                assert r.headers["Allow"] == allow, (method, path)
        async with s.get(f"{gw.external}/partner/v1/orders/7/status", headers=_as(keys["acme"])) as r:
            await read_problem(r, 404)


async def test_a_path_parameter_that_cannot_exist_is_a_404_naming_it(edge: Any) -> None:
    gw, keys, mes = edge
    async with aiohttp.ClientSession() as s, s.get(f"{gw.external}/partner/v1/orders/0",
                                                   headers=_as(keys["acme"])) as r:
        body = await read_problem(r, 404)
    assert body["invalid_params"] == [{"name": "order_id", "in": "path", "pointer": "/order_id",
                                       "reason": "must be at least 1"}]
    assert mes.hits == 0


async def test_a_body_on_a_read_and_a_repeated_member_are_400(edge: Any) -> None:
    gw, keys, mes = edge
    json_ct = {**_as(keys["acme"]), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.external}/partner/v1/orders", data=b"{}", headers=json_ct) as r:
            body = await read_problem(r, 400)
            assert body["invalid_params"][0]["in"] == "body"
        raw = b'{"customer": "A", "material": "PLA", "quantity": 1, "model_name": "a.stl", "quantity": 5}'
        async with s.post(f"{gw.external}/partner/v1/orders", data=raw, headers=json_ct) as r:
            body = await read_problem(r, 400)
            assert "'quantity' appears more than once" in body["invalid_params"][0]["reason"]
    assert mes.hits == 0


async def _metrics(s: aiohttp.ClientSession, admin: str) -> str:
    async with s.get(f"{admin}/metrics") as r:
        return await r.text()


async def test_failures_are_counted_per_operation_and_tier_logged_with_the_partner(
        edge: Any, tmp_path: Path) -> None:
    gw, keys, _ = edge
    async with aiohttp.ClientSession() as s:
        text = await _metrics(s, gw.admin)
        for op in ("createOrder", "listOrders", "getOrder", "createQuote", "getQuote"):  # at 0 from start-up
            assert f'gateway_partner_validation_failures_total{{operation="{op}",tier="test"}} 0.0' in text
        secret = "s3cr3t-customer-name"
        async with s.post(f"{gw.external}/partner/v1/orders", json={"customer": secret, "quantity": 0},
                          headers=_as(keys["acme"])) as r:
            await read_problem(r, 422)
        text = await _metrics(s, gw.admin)
    # the keys' tier "gold" is not a configured tier ("test"): bounded as "other", like the rate limiter's
    assert 'gateway_partner_validation_failures_total{operation="createOrder",tier="other"} 1.0' in text
    assert "acme" not in "".join(line for line in text.splitlines()
                                 if line.startswith("gateway_partner_validation"))

    def logged() -> list[dict[str, Any]]:
        lines = (tmp_path / "gateway.log").read_text().splitlines()
        return [e for e in map(json.loads, lines) if e.get("event.action") == "request-invalid"]

    async def has_line() -> bool:
        return bool(logged())

    await eventually(has_line, timeout=5, what="the request-invalid log line")
    (entry,) = logged()
    assert entry["gateway.partner"] == "acme"
    assert entry["gateway.operation"] == "createOrder"
    assert "body /quantity: must be at least 1" in entry["gateway.violations"]
    assert secret not in json.dumps(entry)  # violations, never the values sent


async def test_a_refusal_is_an_event_on_the_server_span_and_counted_under_the_partners_tier(
        tmp_path: Path) -> None:
    spans = Spans("gateway")
    store, (key,) = make_keys(tmp_path, ("acme", "test", ("orders:read",)))
    before = REGISTRY.get_sample_value("gateway_partner_validation_failures_total",
                                       {"operation": "listOrders", "tier": "test"}) or 0.0
    async with fake_upstream() as mes:
        cfg = edge_config(tmp_path, mes.url, store)
        async with run_gateway(cfg, tmp_path, tracer_provider=spans.provider) as gw, \
                aiohttp.ClientSession() as s, s.get(f"{gw.external}/partner/v1/orders?page=0&per_page=500",
                                                    headers=_as(key)) as r:
            await read_problem(r, 422)
    server = next(sp for sp in spans.finished() if sp.kind == SpanKind.SERVER)
    (event,) = [e for e in server.events if e.name == "request.invalid"]
    assert event.attributes is not None
    assert event.attributes["mes_edge.operation"] == "listOrders"
    assert event.attributes["mes_edge.violation_count"] == 2
    assert list(event.attributes["mes_edge.violations"]) == ["query /page: must be at least 1",
                                                              "query /per_page: must be at most 100"]
    assert REGISTRY.get_sample_value("gateway_partner_validation_failures_total",
                                     {"operation": "listOrders", "tier": "test"}) == before + 1
