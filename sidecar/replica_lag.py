"""Replication lag of the read replica the probes use: ``mes_replica_lag_bytes`` and ``_seconds``.

Measured from both ends, primary first, every ``--probe-interval`` seconds:

* **bytes** = the primary's ``pg_current_wal_lsn()`` minus the replica's
  ``pg_last_wal_replay_lsn()`` (what the replica has yet to *apply*). It is exact, grows while
  the replica is disconnected as well as while replay is slow or paused, and reads 0 on an
  idle primary (no new WAL) once the replica has replayed everything.
* **seconds**: 0 when the replica has replayed everything the primary had written when it was
  asked (read first, so WAL written in between can only make the replica look *ahead*). When
  behind: the replica's ``now()`` minus the newer of (a) its ``pg_last_xact_replay_timestamp()``
  (the commit time of the last transaction it applied) and (b) the last moment this probe saw it
  caught up. Both are points in time when the replica's data was complete, so this is an upper
  bound of how stale a read from the replica can be, and the tightest of the two. (A replica that
  was never seen caught up and has replayed no transaction: the time since it was first seen behind.)
  ``now() - pg_last_xact_replay_timestamp()`` alone (the common recipe) reads *hours* after an idle
  night as soon as one new transaction is in flight, and reads 0 for a disconnected replica when
  paired with ``receive_lsn = replay_lsn``; ``pg_stat_replication.replay_lag`` needs ``pg_monitor``
  on the primary and only moves when the standby reports (every 10 s).

The replica's clock is used for (b) and ``now()``; (a) is a primary commit time, so the two
hosts' clocks must agree (NTP), as for every replication-lag figure of PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from sidecar import metrics
from sidecar.probe_runner import ProbeRunner

PROBE = "replica_lag"
PRIMARY_LSN = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
REPLICA_STATE = (
    "SELECT pg_is_in_recovery() AS standby, "
    "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replayed, "
    "extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_commit, "
    "extract(epoch FROM now())::float8 AS now"
)


class ReplicaLag:
    """Measures the lag of ``replica`` behind ``primary``; ``measure()`` once, ``run()`` forever."""

    def __init__(self, primary: asyncpg.Pool, replica: asyncpg.Pool, runner: ProbeRunner, *,
                 replica_name: str) -> None:
        self._primary, self._replica, self._runner = primary, replica, runner
        runner.declare(PROBE)
        self._name = replica_name
        self._caught_up_at: float | None = None  # replica clock, epoch seconds
        self._behind_since: float | None = None

    async def measure(self) -> None:
        """One measurement; raises the database's errors (the runner counts them).

        The gauges appear with the first successful measurement (the sidecar takes it before it
        reports ready): a 0 exported before anything was measured would hide a replica that was
        unreachable from the start — that one shows as ``sidecar_probe_errors_total{probe="replica_lag"}``.
        """
        written = int(await self._primary.fetchval(PRIMARY_LSN))
        state = await self._replica.fetchrow(REPLICA_STATE)
        now = float(state["now"])
        if not state["standby"]:  # promoted (failover): it is a primary now, nothing to wait for
            self._set(0, 0.0, caught_up_at=now)
            return
        behind = max(written - int(state["replayed"] or 0), 0)
        if behind == 0:
            self._set(0, 0.0, caught_up_at=now)
            return
        complete_at = [t for t in (state["last_commit"], self._caught_up_at) if t is not None]
        if not complete_at:  # never caught up, nothing replayed yet: since we first saw it behind
            self._behind_since = self._behind_since or now
            complete_at = [self._behind_since]
        self._set(behind, max(now - max(complete_at), 0.0))

    def _set(self, behind: int, seconds: float, *, caught_up_at: float | None = None) -> None:
        if caught_up_at is not None:
            self._caught_up_at = caught_up_at
        metrics.REPLICA_LAG_BYTES.labels(self._name).set(behind)
        metrics.REPLICA_LAG_SECONDS.labels(self._name).set(seconds)

    async def run(self, interval: float) -> None:
        """Measure every ``interval`` seconds (a slow measurement delays the next, never overlaps)."""
        while True:
            started = time.monotonic()
            await self._runner.run(PROBE, self.measure)
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))
