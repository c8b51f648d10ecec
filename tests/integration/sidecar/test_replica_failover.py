"""Failover drill: the primary dies, the replica is promoted (`pg_ctl promote`), the probes go on."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from sidecar.db import open_readonly_pool
from sidecar.probe_runner import ProbeRunner
from sidecar.replica_lag import ReplicaLag
from tests.integration.sidecar.sidecar_support import run_sidecar, sample, sidecar_config
from tests.support.replica import caught_up, replica_pair
from tests.support.waiting import eventually

SCHEMA = (Path(__file__).parents[3] / "legacy_sim" / "mes" / "schema.sql").read_text()
NEW_ORDER = ("INSERT INTO orders (source, customer, material, quantity, model_name) "
             "VALUES ('b2b', 'Acme', 'PLA', 1, 'bracket.stl')")
PROBE = {"kind": "mes", "legacy_instance": "mes-t"}


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_probes_on_the_replica_go_on_after_the_primary_dies_and_the_replica_is_promoted(
        session_tmp: Path, tmp_path: Path) -> None:
    # the servers' folders under session_tmp, not tmp_path: a pytest session starting meanwhile
    # resets /tmp/pytest-of-<user> to 0700, and the `postgres` user (we run as root) could no
    # longer reach them
    with replica_pair(session_tmp / "failover-drill") as pair:
        primary, replica = pair.database()
        await _execute(primary, SCHEMA, NEW_ORDER, NEW_ORDER)
        await caught_up(primary, replica)
        config = sidecar_config(f"http://127.0.0.1:{pair.primary.port}", tmp_path, dsn=primary,
                                read_dsn=replica, probe_interval=0.1, terminal_count_interval=0)

        async def submitted(n: int) -> bool:
            return sample("orders_by_status", status="SUBMITTED") == n

        async with run_sidecar(config):
            await eventually(lambda: submitted(2), timeout=10, what="probes read the replica")
            lag_errors = sample("sidecar_probe_errors_total", **PROBE, probe="replica_lag")

            pair.primary.stop()  # the primary is lost …
            pair.replica.promote()  # … and the replica takes over (what Patroni does, by hand)
            await _execute(replica, NEW_ORDER)  # the promoted replica takes writes

            await eventually(lambda: submitted(3), timeout=10,
                             what="the business probes go on, on the promoted replica")

            async def lag_probe_failing() -> bool:
                return sample("sidecar_probe_errors_total", **PROBE, probe="replica_lag") > lag_errors

            # --dsn still names the dead primary: the lag measurement fails (SidecarProbeErrors), loudly
            await eventually(lag_probe_failing, timeout=10, what="the lag probe reports the lost primary")

        # re-pointed at the new primary, the lag of a promoted server is 0 (nothing left to replay)
        pool = await open_readonly_pool(replica, instance="drill")
        try:
            lag = ReplicaLag(pool, pool, ProbeRunner(kind="mes", instance="drill"), replica_name="promoted")
            await lag.measure()
        finally:
            await pool.close()
        assert sample("mes_replica_lag_seconds", replica="promoted") == 0
        assert sample("mes_replica_lag_bytes", replica="promoted") == 0
