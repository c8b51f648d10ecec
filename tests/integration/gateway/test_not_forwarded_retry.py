"""A sidecar's "never forwarded" 502 is retried on the other MES instance (issue 18, point 7).

The chaos matrix's mes-kill finding: a MES SIGKILLed behind its live sidecar gave 2-4 POSTs a 502
through the gateway before health checks ejected it, although the sidecar knew the MES had never
received them (connection refused). Real parts: a legacy MES process on PostgreSQL, two real
sidecars (one in front of a closed port, one in front of the MES), the real gateway with the
partner order route and the operators' route on a cluster of both sidecars (round robin, no
health checks, so requests do reach the dead one). The MES's own tables say how often it
received each request.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest

from devstack.ports import free_port
from tests.integration.gateway.partner_api_support import ALL_SCOPES, NEW_ORDER, partner_api_config
from tests.integration.sidecar.sidecar_support import run_sidecar, sample, sidecar_config
from tests.support.dropping_server import drops_after_reading
from tests.support.gateway import GatewayUnderTest, run_gateway
from tests.support.legacy import mes_processes
from tests.support.partner_edge import make_keys

pytestmark = pytest.mark.timeout(120)
REQUESTS = 4  # round robin over (dead, live): half of them try the dead MES's sidecar first
NOT_FORWARDED_HEADER = "X-Mes-Edge-Not-Forwarded"  # what the sidecar sets (a literal: the test stands alone)


@dataclass
class Edge:
    gw: GatewayUnderTest
    key: str
    partner: str
    mes: str


def unsent_retries() -> float:
    return sample("gateway_upstream_retries_unsent_total", cluster="mes", reason="upstream-connect-failure")


@asynccontextmanager
async def edge(tmp_path: Path, pg_dsn: str, *, trust: bool, broken_mes: str | None = None
               ) -> AsyncIterator[Edge]:
    """Gateway → [sidecar → ``broken_mes`` (default: a closed port), sidecar → a real MES]."""
    partner = f"p{secrets.token_hex(4)}"
    store, (key,) = make_keys(tmp_path, (partner, "test", ALL_SCOPES))
    async with AsyncExitStack() as stack:
        mes = stack.enter_context(mes_processes(pg_dsn, tmp_path, count=1))[0][0]
        sidecars = []
        for name, upstream in (("a", broken_mes or f"http://127.0.0.1:{free_port()}"), ("b", mes)):
            (tmp_path / name).mkdir()
            sidecars.append(await stack.enter_async_context(
                run_sidecar(sidecar_config(upstream, tmp_path / name, instance_id=f"mes-{name}"))))
        cfg = partner_api_config(tmp_path, [sc.url for sc in sidecars], store)
        cfg["clusters"]["mes"].update(
            balancer="round_robin", health_check=None, trust_not_forwarded=trust,
            outlier={"consecutive_failures": 1000},  # keep the dead one in rotation for the test
            retry={"attempts": 2, "retry_on": ["connect-failure", "reset", "gateway-error", "timeout"],
                   "backoff_base": 0.001, "backoff_max": 0.005})
        gw = await stack.enter_async_context(run_gateway(cfg, tmp_path))
        yield Edge(gw=gw, key=key, partner=partner, mes=mes)


def mes_count(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


async def create_orders(s: aiohttp.ClientSession, e: Edge) -> list[tuple[int, str | None]]:
    """(status, the not-forwarded header as the client saw it) of each partner POST /orders."""
    out = []
    for i in range(REQUESTS):
        async with s.post(f"{e.gw.external}/partner/v1/orders", headers={"X-API-Key": e.key},
                          json={**NEW_ORDER, "model_name": f"part-{i}.stl"}) as r:
            await r.read()
            out.append((r.status, r.headers.get(NOT_FORWARDED_HEADER)))
    return out


async def cancel_orders(s: aiohttp.ClientSession, e: Edge, ids: list[int]) -> list[tuple[int, str | None]]:
    """(status, header) of each operator status change through the internal route."""
    out = []
    for order_id in ids:
        async with s.post(f"{e.gw.internal}/orders/{order_id}/status", json={"status": "CANCELLED"}) as r:
            await r.read()
            out.append((r.status, r.headers.get(NOT_FORWARDED_HEADER)))
    return out


async def seed_orders(s: aiohttp.ClientSession, mes: str) -> list[int]:
    ids = []
    for _ in range(REQUESTS):
        async with s.post(f"{mes}/orders", json=NEW_ORDER) as r:
            assert r.status == 201
            ids.append(int((await r.json())["id"]))
    return ids


def cancellations(dsn: str, order_id: int) -> int:
    return mes_count(dsn, "SELECT count(*) FROM order_status_history WHERE order_id = %s "
                          "AND new_status = 'CANCELLED'", order_id)


async def creations_and_changes(tmp_path: Path, pg_dsn: str, *, trust: bool) -> tuple[
        Edge, list[tuple[int, str | None]], list[int], list[tuple[int, str | None]]]:
    """REQUESTS partner creations, then REQUESTS operator status changes, through the edge."""
    async with edge(tmp_path, pg_dsn, trust=trust) as e, aiohttp.ClientSession() as s:
        created = await create_orders(s, e)
        ids = await seed_orders(s, e.mes)
        return e, created, ids, await cancel_orders(s, e, ids)


async def test_trusted_not_forwarded_502_is_retried_on_the_other_instance_exactly_once(
        tmp_path: Path, pg_dsn: str) -> None:
    before = unsent_retries()
    e, created, ids, changed = await creations_and_changes(tmp_path, pg_dsn, trust=True)
    assert created == [(201, None)] * REQUESTS  # partner order creation: none lost, header never seen
    assert changed == [(200, None)] * REQUESTS  # operator status change
    assert mes_count(pg_dsn, "SELECT count(*) FROM orders WHERE partner_id = %s", e.partner) == REQUESTS
    assert mes_count(pg_dsn, "SELECT count(DISTINCT model_name) FROM orders WHERE partner_id = %s",
                     e.partner) == REQUESTS  # each order exactly once
    assert [cancellations(pg_dsn, i) for i in ids] == [1] * REQUESTS
    # at least half of the 2 x REQUESTS POSTs tried the dead MES's sidecar first (round robin; a
    # retry's pick moves the cycle on, so most do), each retried once
    assert REQUESTS <= unsent_retries() - before <= 2 * REQUESTS


async def test_without_the_option_the_sidecars_502_reaches_the_client_as_before(
        tmp_path: Path, pg_dsn: str) -> None:
    before = unsent_retries()
    e, created, _, changed = await creations_and_changes(tmp_path, pg_dsn, trust=False)
    assert sorted(created) == [(201, None)] * (REQUESTS // 2) + [(502, None)] * (REQUESTS // 2)
    assert sorted(changed) == [(200, None)] * (REQUESTS // 2) + [(502, None)] * (REQUESTS // 2)
    assert mes_count(pg_dsn, "SELECT count(*) FROM orders WHERE partner_id = %s", e.partner) == REQUESTS // 2
    assert unsent_retries() == before


async def test_a_502_with_reason_reset_is_not_retried(tmp_path: Path, pg_dsn: str) -> None:
    """The MES read the request, then the connection broke: it may have acted on it, never twice."""
    before = unsent_retries()
    async with drops_after_reading() as (broken, heads), \
            edge(tmp_path, pg_dsn, trust=True, broken_mes=broken) as e, aiohttp.ClientSession() as s:
        ids = await seed_orders(s, e.mes)
        changed = await cancel_orders(s, e, ids)
    assert sorted(changed) == [(200, None)] * (REQUESTS // 2) + [(502, None)] * (REQUESTS // 2)
    assert len(heads) == REQUESTS // 2  # the broken MES saw each of its requests once
    refused = [i for i, (status, _) in zip(ids, changed, strict=True) if status == 502]
    assert [cancellations(pg_dsn, i) for i in refused] == [0] * len(refused)  # not re-sent to the live one
    assert unsent_retries() == before
