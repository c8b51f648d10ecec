"""A PostgreSQL primary with a streaming replica (``devstack``'s code), and waiting for catch-up."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from devstack.postgres import PostgresServer, pg_bin
from devstack.replica import ReplicaServer
from tests.support.waiting import eventually

_databases = itertools.count()


@dataclass(frozen=True)
class ReplicaPair:
    """The two servers; ``database()`` makes a fresh database on the primary, visible on both."""

    primary: PostgresServer
    replica: ReplicaServer

    def database(self, timeout: float = 15.0) -> tuple[str, str]:
        """A new empty database: ``(primary DSN, replica DSN)`` (the replica has replayed its creation)."""
        name = f"repl_{next(_databases)}"
        _psql(self.primary.port, f'CREATE DATABASE "{name}"')
        deadline = time.monotonic() + timeout
        while _psql(self.replica.port, f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":  # noqa: S608
            assert time.monotonic() < deadline, f"database {name} not on the replica after {timeout} s"
            time.sleep(0.05)
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port}/{name}",
                f"postgresql://postgres@127.0.0.1:{self.replica.port}/{name}")


def _psql(port: int, sql: str) -> str:
    argv = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-tAqc", sql]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@contextmanager
def replica_pair(base_dir: Path) -> Iterator[ReplicaPair]:
    """Primary and replica in ``base_dir`` on ephemeral ports; both stopped by PID on exit."""
    primary = PostgresServer(base_dir / "primary", fast=True, database="postgres").start()
    try:
        replica = ReplicaServer(primary, base_dir / "replica").start()
        try:
            yield ReplicaPair(primary, replica)
        finally:
            replica.stop()
    finally:
        primary.stop()


async def flushed_lsn(primary_dsn: str) -> str:
    """The primary's WAL position after everything committed so far is written out.

    The test servers run with ``synchronous_commit = off``: a commit can sit in the WAL buffers,
    beyond ``pg_current_wal_lsn()``, for a few hundred milliseconds. One synchronous commit
    flushes the WAL up to itself, so every earlier commit is below the position read after it.
    """
    primary = await asyncpg.connect(primary_dsn)
    try:
        await primary.execute("SET synchronous_commit = on")
        # a transaction that writes WAL (a logical message, decoded by nobody) commits synchronously,
        # flushing the WAL up to its commit record ("SELECT txid_current()" writes none: no flush)
        await primary.fetchval("SELECT pg_logical_emit_message(true, 'mes-edge-tests', 'flush')")
        return str(await primary.fetchval("SELECT pg_current_wal_lsn()::text"))
    finally:
        await primary.close()


async def replayed(replica_dsn: str, lsn: str) -> bool:
    """Has the replica replayed the WAL up to ``lsn``?"""
    replica = await asyncpg.connect(replica_dsn)
    try:
        return bool(await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn))
    finally:
        await replica.close()


async def caught_up(primary_dsn: str, replica_dsn: str, timeout: float = 15.0) -> None:
    """Wait until the replica has replayed every commit the primary made before this call."""
    target = await flushed_lsn(primary_dsn)
    await eventually(lambda: replayed(replica_dsn, target), timeout=timeout,
                     what=f"the replica replays the primary's WAL up to {target}")
