"""A streaming read replica of a :class:`PostgresServer` (``make run`` with ``MES_REPLICA=1``, tests).

``pg_basebackup -R -X stream`` copies the primary into a folder of its own and writes
``standby.signal`` + ``primary_conninfo``; the copy then runs as a hot standby on its own
loopback port. The primary needs nothing changed: PostgreSQL's defaults already have
``wal_level = replica`` and ten WAL senders, and initdb's ``pg_hba.conf`` lets loopback
replication connections in (trust, like every other loopback connection of the devstack).

A fresh copy is taken at every start: a replica left over from an earlier run may need WAL the
primary has since recycled (no replication slot is kept for it: a forgotten slot would make
the primary keep WAL forever). Copying the seeded 1,000,000-order database (690 MiB) takes
2.5 s (``python -m bench.replica``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack.postgres import PostgresServer, pg_bin

#: Hot-standby settings. ``hot_standby_feedback``: the primary's vacuum keeps the rows the
#: replica's probes still read, so they are not cancelled by recovery conflicts (the price: a long
#: query on the replica holds back vacuum on the primary; the probes' 5 s statement timeout bounds it).
REPLICA_SETTINGS = {"hot_standby": "on", "hot_standby_feedback": "on"}


class ReplicaServer(PostgresServer):
    """A hot standby of ``primary`` on ``127.0.0.1:port``, streaming from it; stopped by PID."""

    def __init__(self, primary: PostgresServer, base_dir: Path, *, port: int = 0) -> None:
        # the primary's own settings too (its shared_preload_libraries, e.g. pg_stat_statements)
        super().__init__(base_dir, port=port, fast=primary.fast, database=primary.database,
                         settings={**primary.settings, **REPLICA_SETTINGS})
        self.primary = primary

    def start(self, timeout: float = 30.0) -> ReplicaServer:
        """Copy the running primary (``pg_basebackup -R``), then start the copy as a standby."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self._run([pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                   "-D", str(self.data_dir), "-R", "-X", "stream", "--checkpoint=fast",
                   *(["--no-sync"] if self.fast else [])])
        super().start(timeout)
        return self

    def promote(self) -> None:
        """``pg_ctl promote -w``: end recovery, accept writes (the failover drill)."""
        self._run([pg_bin("pg_ctl"), "promote", "-w", "-D", str(self.data_dir)])
