"""``order-journey --dsn``: the order's status history comes from the MES database's read replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from telemetry.journey_command import order_journey
from tests.support.replica import caught_up

SCHEMA = Path(__file__).parents[3] / "legacy_sim" / "mes" / "schema.sql"


def _on(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]  # the test's own constant SQL


def _status(dsn: str, order_id: int, old: str, new: str) -> None:
    _on(dsn, f"UPDATE orders SET status = '{new}' WHERE id = {order_id}",  # noqa: S608
        "INSERT INTO order_status_history (order_id, old_status, new_status) "  # noqa: S608
        f"VALUES ({order_id}, '{old}', '{new}')")


@pytest.fixture
def order(replicated_dsns: tuple[str, str]) -> int:
    """Order 1, created by the legacy's SQL on the primary and moved to PRICE_CALCULATED."""
    primary, _ = replicated_dsns
    _on(primary, SCHEMA.read_text(),
        "INSERT INTO orders (id, source, customer, material, quantity, model_name) "
        "VALUES (1, 'b2b', 'Acme', 'PLA', 1, 'bracket.stl')",
        "INSERT INTO order_status_history (order_id, new_status) VALUES (1, 'SUBMITTED')")
    _status(primary, 1, "SUBMITTED", "PRICE_CALCULATED")
    return 1


def test_journey_reads_the_status_history_from_the_replica_up_to_its_replay_point(
        replicated_dsns: tuple[str, str], order: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    primary, replica = replicated_dsns
    asyncio.run(caught_up(primary, replica))
    _on(replica, "SELECT pg_wal_replay_pause()")
    try:
        _status(primary, order, "PRICE_CALCULATED", "CANCELLED")  # not yet on the paused replica
        assert order_journey(str(order), logs=[tmp_path], dsn=replica) == 0
        paused = capsys.readouterr().out
    finally:
        _on(replica, "SELECT pg_wal_replay_resume()")
    assert "mes-database  order-created         →SUBMITTED" in paused
    assert "last status: PRICE_CALCULATED" in paused
    assert "CANCELLED" not in paused
    assert "database:    a replica, replayed up to " in paused

    asyncio.run(caught_up(primary, replica))
    assert order_journey(str(order), logs=[tmp_path], dsn=replica) == 0
    assert "last status: CANCELLED" in capsys.readouterr().out


def test_an_unreachable_database_exits_2_naming_the_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert order_journey("1", logs=[tmp_path], dsn="postgresql://postgres@127.0.0.1:1/mes") == 2
    assert "order-journey: cannot read logs:" in capsys.readouterr().err
