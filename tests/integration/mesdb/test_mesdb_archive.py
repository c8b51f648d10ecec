"""The archiver: orders that closed (or were cancelled) longer ago than the age move to the archive,
once or every N seconds until it is told to stop."""

from __future__ import annotations

import signal
import subprocess
import sys

import psycopg

from tests.integration.mesdb.conftest import DUE_IN_HOT, close_long_ago, execute, mesdb, mesdb_json, query
from tests.support.waiting import eventually


def _in_archive(dsn: str, order_id: int) -> bool:
    return query(dsn, "SELECT count(*) FROM orders_archive WHERE id = %s", order_id) == [(1,)]


def _shipped(dsn: str) -> list[int]:
    return [r[0] for r in query(dsn, "SELECT id FROM orders WHERE status = 'SHIPPED' ORDER BY id LIMIT 2")]


def test_archive_moves_orders_closed_since_the_split(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "split")
    closed, recent = _shipped(seeded_dsn)
    close_long_ago(seeded_dsn, closed)
    execute(
        seeded_dsn, "UPDATE orders SET status = 'CLOSED', status_changed_at = now() WHERE id = %s", recent
    )
    moved = mesdb_json(seeded_dsn, "archive")
    assert moved["rows"] == 1
    assert _in_archive(seeded_dsn, closed)
    assert not _in_archive(seeded_dsn, recent)
    assert query(seeded_dsn, "SELECT status FROM orders WHERE id = %s", closed) == [("CLOSED",)]


def test_archive_before_any_split_refuses_with_a_reason(seeded_dsn: str) -> None:
    done = mesdb(seeded_dsn, "archive")
    assert done.returncode == 1
    assert "run `mesdb split` first" in done.stderr


async def test_archiver_every_n_seconds_keeps_moving_across_a_killed_session_until_sigterm(
    seeded_dsn: str,
) -> None:
    mesdb_json(seeded_dsn, "split", "--prepare-only")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesdb", "--dsn", seeded_dsn, "archive", "--every", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    order_id = _shipped(seeded_dsn)[0]

    async def seeded_ones_moved() -> bool:
        return query(seeded_dsn, DUE_IN_HOT) == [(0,)]

    async def closed_one_moved() -> bool:
        return _in_archive(seeded_dsn, order_id)

    try:
        await eventually(seeded_ones_moved, timeout=60, what="the seeded archived orders moved")
        # a killed session (a failover, a DBA's pg_terminate_backend) costs a pass, not the archiver
        query(
            seeded_dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mesdb'",
        )
        close_long_ago(seeded_dsn, order_id)
        await eventually(closed_one_moved, timeout=30, what="an order closed meanwhile archived")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "verified batches" in out


def test_a_new_order_cannot_reuse_an_archived_orders_crm_reference(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "split")
    order_id, ref = query(
        seeded_dsn, "SELECT id, external_ref FROM orders_archive WHERE source = 'crm' LIMIT 1"
    )[0]
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:  # the legacy's own INSERT, as it sends it
        inserted = conn.execute(
            "INSERT INTO orders (source, external_ref, partner_id, customer, material, quantity, model_name, "
            "model_sha256) VALUES ('crm', %s, NULL, 'x', 'PLA', 1, 'm.stl', NULL) "
            "ON CONFLICT (source, external_ref) DO NOTHING RETURNING *",
            (ref,),
        ).fetchall()
    assert inserted == []
    assert query(seeded_dsn, "SELECT id FROM orders WHERE source = 'crm' AND external_ref = %s", ref) == [
        (order_id,)
    ]
