"""``make run`` applies the database kit to the dev MES database and keeps its archiver running."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
from pathlib import Path

import pytest

from devstack.postgres import pg_bin
from tests.support.make_run import make_run
from tests.support.waiting import eventually

PRIMARY = 55432
ARCHIVER_METRICS = 9401  # devstack.platform.Ports.mesdb_archiver_metrics
OLD_CLOSED_ORDER = (
    "INSERT INTO orders (source, customer, material, quantity, model_name, status, created_at, "
    "status_changed_at) VALUES ('b2b', 'ACME', 'PLA', 1, 'm.stl', 'CLOSED', now() - interval "
    "'90 days', now() - interval '60 days') RETURNING id"
)


def _sample(url: str, series: str) -> float:
    """The value of one ``name`` or ``name{label="value"}`` line of a /metrics page."""
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
        for line in resp.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    raise AssertionError(f"{series} not on {url}")


def _psql(port: int, sql: str) -> str:
    argv = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "mes", "-tAqc", sql]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def test_make_run_applies_the_kit_and_its_archiver_moves_closed_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESDB_ARCHIVE_EVERY", "0.5")
    with make_run(tmp_path / "run") as platform:
        primary = platform.moved[PRIMARY]
        assert "-m mesdb --dsn" in platform.banner
        assert _psql(primary, "SHOW plan_cache_mode") == "force_custom_plan"  # a new session: the database's
        assert _psql(primary, "SELECT inhrelid::regclass FROM pg_inherits") == "orders_archive"
        assert _psql(primary, "SELECT count(*) FROM mesdb.applied WHERE kind = 'index'") == "5"
        _psql(primary, OLD_CLOSED_ORDER)  # the newest order: the archive holds it once moved

        async def archived() -> bool:
            return _psql(primary, "SELECT max(id) = (SELECT max(id) FROM orders) FROM orders_archive") == "t"

        asyncio.run(eventually(archived, timeout=60, what="make run's archiver moved the closed order"))

        # its /metrics (the devstack port Prometheus scrapes) counts every order it moved, exactly
        metrics = f"http://127.0.0.1:{platform.moved[ARCHIVER_METRICS]}/metrics"

        async def counted() -> bool:
            moved = _psql(primary, "SELECT count(*) FROM orders_archive")
            return _sample(metrics, "mesdb_archiver_orders_moved_total") == float(moved)

        asyncio.run(eventually(counted, timeout=30, what="counter = orders_archive rows"))
        assert _sample(metrics, 'mesdb_archiver_passes_total{outcome="ok"}') >= 1
        assert _sample(metrics, "mesdb_archiver_last_success_timestamp_seconds") > 0


def test_make_run_with_mesdb_0_gives_back_the_legacy_schema_an_earlier_run_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_run(tmp_path / "run") as platform:  # MESDB=1, the default: the dev database persists
        primary = platform.moved[PRIMARY]
        assert _psql(primary, "SELECT count(*) FROM pg_inherits") == "1"
        _psql(primary, OLD_CLOSED_ORDER)  # archived or not: after the revert it is in orders
    monkeypatch.setenv("MESDB", "0")
    with make_run(tmp_path / "run") as platform:  # the same run directory, the same database
        primary = platform.moved[PRIMARY]
        assert "MESDB=0: reverted what an earlier run's database kit left" in capsys.readouterr().out
        assert _psql(primary, "SELECT count(*) FROM pg_inherits") == "0"
        assert _psql(primary, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'mesdb_%'") == "0"
        keys = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated"
        assert _psql(primary, keys) == "2"
        assert _psql(primary, "SHOW plan_cache_mode") == "auto"
        assert _psql(primary, "SELECT count(*) FROM ONLY orders WHERE status = 'CLOSED'") == "1"
