"""Usage accounting on real Redis and real gateway processes: exact counts per partner per kind
across two gateways and a restart; the partner's own view; the operators' export (admin + CLI)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import json
import subprocess
import sys
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.gateway.partner_api_support import ALL_SCOPES, NEW_ORDER
from tests.support.gateway import (
    OPERATOR_AUTH,
    OPERATOR_HEADERS,
    GatewayUnderTest,
    gateway_config,
    gateway_process,
)
from tests.support.legacy import mes_processes
from tests.support.partner_edge import api_keys_section, make_keys
from tests.support.waiting import eventually

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
N = 300  # requests in the concurrent burst: usage reads, order creations, some rate-limited
ORDERS = 20
RATE = 100  # per minute: the burst goes over it


def _config(tmp_path: Path, mes: list[str], store: Path, redis_url: str) -> dict[str, Any]:
    return gateway_config(
        tmp_path,
        clusters={"mes": {"endpoints": mes, "timeouts": {"connect": 1, "per_try": 10, "overall": 20},
                          "health_check": {"path": "/healthz", "interval": 0.5}}},
        routes=[{"name": "partner-usage", "listener": "external", "prefix": "/partner/v1/usage",
                 "methods": ["GET"], "handler": "usage"},
                {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
                 "methods": ["GET", "POST"], "cluster": "mes", "rewrite_prefix": "/orders",
                 "partner_scope": "orders",
                 "auth": {"scopes": {"GET": ["orders:read"], "POST": ["orders:write"]}}}],
        api_keys=api_keys_section(store), operator_auth=OPERATOR_AUTH,
        # a per-minute budget the burst exceeds: some answers are 429, shared by both gateways
        ratelimit={"redis_url": redis_url, "default_tier": "gold", "key_prefix": "test-rl",
                   "tiers": {"gold": {"burst": "10000/second", "rate": f"{RATE}/minute"}}},
        usage={"redis_url": redis_url, "flush_interval": 0.05})


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


async def _usage(s: aiohttp.ClientSession, gw: GatewayUnderTest, key: str) -> dict[str, Any]:
    day = _today()
    async with s.get(f"{gw.external}/partner/v1/usage", params={"from": day, "to": day},
                     headers={"X-API-Key": key}) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def _burst(gateways: list[GatewayUnderTest], key: str) -> Counter[tuple[str, int]]:
    """N requests from 16 concurrent clients alternating between the gateways: ORDERS order
    creations, the rest usage reads; (kind, status) of each answer."""
    seen: Counter[tuple[str, int]] = Counter()
    targets, jobs = itertools.cycle(gateways), iter(range(N))
    day = _today()

    async def client(s: aiohttp.ClientSession) -> None:
        for i in jobs:
            gw = next(targets)
            if i % (N // ORDERS) == 0:
                r = await s.post(f"{gw.external}/partner/v1/orders", json=NEW_ORDER,
                                 headers={"X-API-Key": key})
                kind = "order"
            else:
                r = await s.get(f"{gw.external}/partner/v1/usage", params={"from": day, "to": day},
                                headers={"X-API-Key": key})
                kind = "usage"
            async with r:
                await r.read()
                seen[(kind, r.status)] += 1

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(client(s) for _ in range(16)))
    return seen


@pytest.fixture
def mes(tmp_path: Path, pg_dsn: str) -> Any:
    with mes_processes(pg_dsn, tmp_path, count=1) as started:
        yield [u for u, _ in started]


async def test_two_gateways_count_every_request_exactly_once_and_counts_survive_a_restart(
        tmp_path: Path, mes: list[str], redis_url: str) -> None:
    store, (acme, globex) = make_keys(tmp_path, ("acme", "gold", ALL_SCOPES), ("globex", "gold", ALL_SCOPES))
    dirs = [tmp_path / n for n in ("a", "b", "c")]
    for d in dirs:
        d.mkdir()
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(gateway_process(_config(dirs[0], mes, store, redis_url), dirs[0]))
        b = await stack.enter_async_context(gateway_process(_config(dirs[1], mes, store, redis_url), dirs[1]))
        seen = await _burst([a, b], acme)
        assert sum(seen.values()) == N
        limited = seen[("order", 429)] + seen[("usage", 429)]
        assert limited > 0, seen  # the burst did exceed the budget
        assert seen[("order", 201)] > 0, seen
        expected = {"requests": N, "orders": seen[("order", 201)], "rate_limited": limited}

        reads = 0

        async def counted() -> bool:  # globex's own reads (acme's budget is spent) show up
            nonlocal reads
            reads += 1
            async with aiohttp.ClientSession() as s:
                totals = (await _usage(s, b, globex))["totals"]
            return bool(totals["requests"] >= 1)
        await eventually(counted, timeout=10, what="globex's own read counted")

        # stop both gateways (SIGTERM): their counts are flushed on the way out; a new process starts
        await stack.pop_all().aclose()
        c = await stack.enter_async_context(gateway_process(_config(dirs[2], mes, store, redis_url), dirs[2]))
        params = {"from": _today(), "to": _today(), "format": "json"}
        async with aiohttp.ClientSession() as s, \
                s.get(f"{c.admin}/usage/export", params=params, headers=OPERATOR_HEADERS) as r:
            assert r.status == 200, await r.text()
            rows = {row["partner_id"]: row for row in (await r.json())["rows"]}
        print(f"\nanswers {dict(seen)} -> counted {rows['acme']}")  # the figure of the closing note
        assert {k: rows["acme"][k] for k in expected} == expected
        assert (rows["acme"]["quotes"], rows["acme"]["shed"]) == (0, 0)
        assert rows["globex"]["requests"] == reads


async def test_partner_view_admin_export_and_cli_agree(tmp_path: Path, mes: list[str],
                                                       redis_url: str) -> None:
    store, (acme,) = make_keys(tmp_path, ("acme", "gold", ALL_SCOPES))
    cfg = _config(tmp_path, mes, store, redis_url)
    async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        for _ in range(3):
            body = await _usage(s, gw, acme)
        assert body["partner_id"] == "acme"
        assert body["timezone"] == "UTC"
        assert [d["date"] for d in body["days"]] == [_today()]
        windows = {w["name"]: w for w in body["quota"]["windows"]}
        assert windows["rate"]["limit"] == RATE
        assert windows["rate"]["period_seconds"] == 60
        assert windows["rate"]["remaining"] == RATE - 3  # as of this third request

        async def three() -> bool:
            return bool((await _usage(s, gw, acme))["totals"]["requests"] >= 4)
        await eventually(three, timeout=10, what="the first three reads counted")
        async with s.get(f"{gw.admin}/usage/export", params={"from": _today(), "to": _today()}) as r:
            assert r.status == 401  # the export needs an operator token, even on loopback
        async with s.get(f"{gw.admin}/usage/export", params={"from": _today(), "to": _today()},
                         headers=OPERATOR_HEADERS) as r:
            assert r.status == 200
            assert r.content_type == "text/csv"
            admin_rows = list(csv.DictReader(io.StringIO(await r.text())))
    (tmp_path / "cli.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "gateway.usage", "export", "--config",
                          str(tmp_path / "cli.yaml"), "--from", _today(), "--to", _today(),
                          "--format", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    cli_rows = json.loads(out.stdout)["rows"]
    assert [r["partner_id"] for r in cli_rows] == [r["partner_id"] for r in admin_rows] == ["acme"]
    assert cli_rows[0]["requests"] >= int(admin_rows[0]["requests"]) >= 4


async def test_bad_ranges_are_problems_listing_every_pointer(tmp_path: Path, mes: list[str],
                                                             redis_url: str) -> None:
    store, (acme,) = make_keys(tmp_path, ("acme", "gold", ALL_SCOPES))
    async with gateway_process(_config(tmp_path, mes, store, redis_url), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        cases = [({}, 422, {"/from", "/to"}),
                 ({"from": "2026-02-30", "to": "2026-03-01"}, 422, {"/from"}),
                 ({"from": "2026-03-02", "to": "2026-03-01"}, 422, {"/to"}),
                 ({"from": "2026-01-01", "to": "2026-12-31"}, 422, {"/to"})]
        for params, status, pointers in cases:
            async with s.get(f"{gw.external}/partner/v1/usage", params=params,
                             headers={"X-API-Key": acme}) as r:
                assert r.status == status, (params, await r.text())
                assert r.content_type == "application/problem+json"
                body = await r.json()
                assert {p["pointer"] for p in body["invalid_params"]} == pointers, (params, body)
                assert body["instance"] == f"urn:request:{r.headers['X-Request-ID']}"
