"""The sidecar on a primary with a streaming replica: probes read the replica, its lag is a metric."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from contracts.lifecycle import STATUS_NAMES as STATUSES
from devstack.ports import free_port
from legacy_sim.mes import build_mes_app
from sidecar.db import open_readonly_pool
from sidecar.probe_runner import ProbeRunner
from sidecar.probes import BusinessProbes
from sidecar.replica_lag import ReplicaLag
from tests.integration.sidecar.sidecar_support import (
    create_orders,
    mes_config,
    move_order,
    run_sidecar,
    sample,
    sidecar_config,
)
from tests.support.replica import caught_up
from tests.support.waiting import eventually

LAG = "mes_replica_lag_bytes", "mes_replica_lag_seconds"


@pytest.fixture
async def mes(replicated_dsns: tuple[str, str]) -> AsyncIterator[TestClient[Any, Any]]:
    """The legacy MES stand-in on the primary (it creates its schema there)."""
    app = build_mes_app(mes_config(replicated_dsns[0]))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def primary(replicated_dsns: tuple[str, str],
                  mes: TestClient[Any, Any]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(replicated_dsns[0])
    yield conn
    await conn.close()


@pytest.fixture
async def replica(replicated_dsns: tuple[str, str]) -> AsyncIterator[asyncpg.Connection]:
    """A superuser session on the replica (pauses and resumes replay)."""
    conn = await asyncpg.connect(replicated_dsns[1])
    yield conn
    await conn.execute("SELECT pg_wal_replay_resume()")  # never leave the session's replica paused
    await conn.close()


async def probe_answers(dsn: str) -> dict[str, float]:
    """One probe cycle on ``dsn``: the business gauges it sets."""
    pool = await open_readonly_pool(dsn, instance="mes-replica-test")
    try:
        await BusinessProbes(pool, ProbeRunner(kind="mes", instance="mes-replica-test")).run_once()
    finally:
        await pool.close()
    answers = {f"orders_by_status/{s}": sample("orders_by_status", status=s) for s in STATUSES}
    answers["orders_new_per_minute"] = sample("orders_new_per_minute")
    for instance in ("mes-1", "mes-2"):
        answers[f"pricing/{instance}"] = sample("pricing_calculations_in_progress", legacy_instance=instance)
    return answers


async def test_the_replica_streams_the_primarys_writes_and_refuses_its_own(
        replicated_dsns: tuple[str, str], primary: asyncpg.Connection, replica: asyncpg.Connection,
        mes: TestClient[Any, Any]) -> None:
    ids = await create_orders(mes, 3)
    await caught_up(*replicated_dsns)
    assert await replica.fetchval("SELECT pg_is_in_recovery()") is True
    assert sorted(r["id"] for r in await replica.fetch("SELECT id FROM orders")) == ids
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await replica.execute("DELETE FROM orders")


async def test_probes_on_the_replica_answer_what_they_answer_on_the_primary_after_catch_up(
        replicated_dsns: tuple[str, str], primary: asyncpg.Connection, mes: TestClient[Any, Any]) -> None:
    ids = await create_orders(mes, 6)
    await move_order(mes, ids[0], "PRICE_CALCULATED", "MANUFACTURING_APPROVED")
    await move_order(mes, ids[1], "PRICE_CALCULATED")
    await move_order(mes, ids[2], "CANCELLED")
    await move_order(mes, ids[3], "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED",
                     "MANUFACTURING_COMPLETED", "SHIPPED", "CLOSED")
    await primary.execute("INSERT INTO price_calculations (instance_id, model_sha256, material, finished_at) "
                          "VALUES ('mes-1', 'a', 'PLA', NULL), ('mes-2', 'b', 'PLA', now())")
    await caught_up(*replicated_dsns)

    on_primary = await probe_answers(replicated_dsns[0])
    on_replica = await probe_answers(replicated_dsns[1])

    assert on_replica == on_primary
    assert on_replica["orders_by_status/SUBMITTED"] == 2
    assert on_replica["pricing/mes-1"] == 1


async def test_lag_metric_reflects_a_paused_replay_and_returns_to_zero(
        replicated_dsns: tuple[str, str], primary: asyncpg.Connection, replica: asyncpg.Connection,
        mes: TestClient[Any, Any]) -> None:
    pools = [await open_readonly_pool(dsn, instance="lag-test") for dsn in replicated_dsns]
    runner = ProbeRunner(kind="mes", instance="lag-test")
    lag = ReplicaLag(*pools, runner, replica_name="paused-replica")

    def value(name: str) -> float:
        return sample(name, replica="paused-replica")

    async def measured(*, behind: bool, seconds_above: float = 0.0) -> bool:
        assert await runner.run("replica_lag", lag.measure)
        if behind:
            return value(LAG[0]) > 0 and value(LAG[1]) > seconds_above
        return value(LAG[0]) == value(LAG[1]) == 0

    try:
        await caught_up(*replicated_dsns)
        await eventually(lambda: measured(behind=False), timeout=10, what="lag 0 on a caught-up replica")
        # the usual recipe, now() - last replayed commit, would read more than 0 on this idle pair
        assert await replica.fetchval("SELECT now() > pg_last_xact_replay_timestamp()")
        await replica.execute("SELECT pg_wal_replay_pause()")
        await create_orders(mes, 2)  # WAL the paused replica receives but does not apply
        await eventually(lambda: measured(behind=True), timeout=10, what="lag > 0 while replay is paused")
        first = value(LAG[1])
        await eventually(lambda: measured(behind=True, seconds_above=first), timeout=10,
                         what="lag seconds grow while replay stays paused")
        assert await replica.fetchval("SELECT count(*) FROM orders") == 0  # still the old view

        await replica.execute("SELECT pg_wal_replay_resume()")
        await eventually(lambda: measured(behind=False), timeout=10, what="lag back to 0 after resume")
        assert await replica.fetchval("SELECT count(*) FROM orders") == 2
    finally:
        for pool in pools:
            await pool.close()


async def test_an_unreachable_replica_is_a_probe_error_not_a_lag_of_zero(
        replicated_dsns: tuple[str, str]) -> None:
    primary = await open_readonly_pool(replicated_dsns[0], instance="lag-test")
    nowhere = await open_readonly_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/mes",
                                       instance="lag-test")
    runner = ProbeRunner(kind="mes", instance="lag-unreachable")
    try:
        lag = ReplicaLag(primary, nowhere, runner, replica_name="unreachable")
        assert not await runner.run("replica_lag", lag.measure)
    finally:
        await primary.close()
        await nowhere.close()
    assert REGISTRY.get_sample_value("mes_replica_lag_seconds", {"replica": "unreachable"}) is None
    assert sample("sidecar_probe_errors_total", kind="mes", legacy_instance="lag-unreachable",
                  probe="replica_lag") == 1


async def test_sidecar_with_a_read_dsn_probes_the_replica_and_exports_its_lag(
        replicated_dsns: tuple[str, str], replica: asyncpg.Connection, mes: TestClient[Any, Any],
        tmp_path: Path) -> None:
    primary_dsn, replica_dsn = replicated_dsns
    await create_orders(mes, 1)
    await caught_up(primary_dsn, replica_dsn)
    config = sidecar_config(str(mes.make_url("/")), tmp_path, dsn=primary_dsn, read_dsn=replica_dsn,
                            probe_interval=0.1, terminal_count_interval=0)
    name = config.replica_name
    assert name == f"127.0.0.1:{replica_dsn.split(':')[2].split('/')[0]}"
    labels = {"kind": "mes", "legacy_instance": "mes-t", "probe": "replica_lag"}
    errors_before = sample("sidecar_probe_errors_total", **labels)  # other tests' sidecars share the name
    started = time.time()
    async with run_sidecar(config):
        assert sample("sidecar_probe_last_success_timestamp_seconds", **labels) >= started  # before ready
        assert sample("sidecar_probe_errors_total", **labels) == errors_before

        async def submitted(n: int) -> bool:
            return sample("orders_by_status", status="SUBMITTED") == n

        await eventually(lambda: submitted(1), timeout=10, what="probes see the first order")
        await replica.execute("SELECT pg_wal_replay_pause()")
        await create_orders(mes, 2)

        async def lagging() -> bool:
            return sample("mes_replica_lag_bytes", replica=name) > 0

        await eventually(lagging, timeout=10, what="mes_replica_lag_bytes > 0 while replay is paused")
        assert await submitted(1)  # the probes read the paused replica, not the primary (3 there)
        await replica.execute("SELECT pg_wal_replay_resume()")
        await eventually(lambda: submitted(3), timeout=10, what="probes see all orders after resume")
