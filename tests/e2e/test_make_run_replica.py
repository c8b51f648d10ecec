"""``MES_REPLICA=1 make run``: the MES database streams to a read replica the probes read."""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.request
from pathlib import Path

from devstack.postgres import pg_bin
from tests.support.make_run import make_run
from tests.support.waiting import eventually

PRIMARY, REPLICA, MES_1_SIDECAR_ADMIN = 55432, 55433, 9121


def _psql(port: int, sql: str) -> str:
    argv = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "mes", "-tAc", sql]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def test_make_run_with_mes_replica_streams_to_a_replica_whose_lag_the_sidecar_exports(
        session_tmp: Path) -> None:
    # the run dir under session_tmp (tempfile), not tmp_path: a pytest session starting meanwhile
    # resets /tmp/pytest-of-<user> to 0700 and the `postgres` user could no longer reach its folders
    with make_run(session_tmp / "make-run-replica", replica=True) as platform:
        primary, replica = platform.moved[PRIMARY], platform.moved[REPLICA]
        assert f"postgresql://postgres@127.0.0.1:{replica}/mes" in platform.banner
        assert _psql(primary, "SELECT state FROM pg_stat_replication") == "streaming"
        assert _psql(replica, "SELECT pg_is_in_recovery()") == "t"
        metrics_url = f"http://127.0.0.1:{platform.moved[MES_1_SIDECAR_ADMIN]}/metrics"

        async def lag_exported() -> bool:
            with urllib.request.urlopen(metrics_url, timeout=5) as resp:
                text = resp.read().decode()
            return re.search(rf'^mes_replica_lag_seconds\{{replica="127.0.0.1:{replica}"\}} 0\.0$', text,
                             re.MULTILINE) is not None

        asyncio.run(eventually(lag_exported, timeout=45, what="mes-1's sidecar exports the replica's lag"))
