"""A legacy write that meets a batch in flight: it waits for the batch, then sees the order where
the batch put it — never a duplicate order, never a false foreign-key error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from mesdb.db import connect
from mesdb.mover import move_batch
from tests.integration.mesdb.conftest import mesdb_json, query

LEGACY_INSERT = (
    "INSERT INTO orders (source, external_ref, partner_id, customer, material, quantity, model_name, "
    "model_sha256) VALUES ('crm', %s, NULL, 'x', 'PLA', 1, 'm.stl', NULL) "
    "ON CONFLICT (source, external_ref) DO NOTHING RETURNING id"
)


def _first_archivable_crm_order(dsn: str) -> tuple[int, str]:
    row = query(
        dsn,
        "SELECT id, external_ref FROM orders WHERE source = 'crm' AND status IN ('CLOSED', 'CANCELLED') "
        "AND status_changed_at < now() - interval '30 days' ORDER BY id LIMIT 1",
    )[0]
    return int(row[0]), str(row[1])


def _while_a_batch_is_in_flight(
    dsn: str, order_id: int, legacy_write: Callable[[psycopg.Connection], Any]
) -> Any:
    """Move the batch holding ``order_id`` but keep it uncommitted until ``legacy_write`` waits on it."""
    result: list[Any] = []
    with (
        connect(dsn) as batch,
        psycopg.connect(dsn, autocommit=True, application_name="legacy-race") as legacy,
    ):
        with batch.transaction():
            moved, _ = move_batch(batch, "archive", batch=10, after_id=order_id - 1)
            assert moved > 0
            writer = threading.Thread(target=lambda: result.append(legacy_write(legacy)))
            writer.start()
            with psycopg.connect(dsn, autocommit=True) as watch:
                while not watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'legacy-race' AND wait_event_type = 'Lock'"
                ).fetchone()[0]:  # type: ignore[index]
                    writer.join(0.02)
                    assert writer.is_alive(), "the legacy write did not wait for the batch"
        writer.join(10)  # the batch committed
    return result[0]


def test_a_crm_redelivery_during_the_batch_moving_its_order_inserts_no_duplicate(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "split", "--prepare-only")
    order_id, ref = _first_archivable_crm_order(seeded_dsn)
    inserted = _while_a_batch_is_in_flight(
        seeded_dsn, order_id, lambda c: c.execute(LEGACY_INSERT, (ref,)).fetchall()
    )
    assert inserted == []  # ON CONFLICT DO NOTHING's answer: the legacy then reads the existing order
    assert query(seeded_dsn, "SELECT id FROM orders WHERE source = 'crm' AND external_ref = %s", ref) == [
        (order_id,)
    ]


def test_a_history_row_during_the_batch_moving_its_order_passes_the_key_check(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "split", "--prepare-only")
    order_id, _ = _first_archivable_crm_order(seeded_dsn)
    _while_a_batch_is_in_flight(
        seeded_dsn,
        order_id,
        lambda c: (
            c.execute(
                "INSERT INTO order_status_history (order_id, new_status) VALUES (%s, 'CLOSED')", (order_id,)
            ).rowcount
        ),
    )
    assert query(seeded_dsn, "SELECT count(*) FROM order_status_history WHERE order_id = %s", order_id) == [
        (1,)
    ]
