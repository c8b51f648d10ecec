"""``mesdb analyse`` on a legacy database it has never seen: statements, stats, plans, proposals."""

from __future__ import annotations

import os

import asyncpg
import psycopg

from contracts.lifecycle import OrderStatus
from legacy_sim.mes.orders_repo import list_orders
from tests.integration.mesdb.conftest import mesdb, mesdb_json, query
from tests.integration.mesdb.test_mesdb_split import ROWS

LIST_TEXT = "ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"


async def _operator_lists(dsn: str) -> None:
    """A few operator list calls through the legacy's own code (asyncpg prepared statements)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        for status in (OrderStatus.MANUFACTURING_STARTED, None, OrderStatus.SHIPPED):
            await list_orders(pool, status=status, limit=50, offset=0)
    finally:
        await pool.close()


def _newest_partner(dsn: str) -> str:
    return str(
        query(dsn, "SELECT partner_id FROM orders WHERE partner_id IS NOT NULL ORDER BY ctid DESC LIMIT 1")[
            0
        ][0]
    )


async def test_analyse_explains_the_legacy_list_from_pg_stat_statements(seeded_dsn: str) -> None:
    await _operator_lists(seeded_dsn)
    report = mesdb_json(seeded_dsn, "analyse")
    assert report["statements_source"] == "pg_stat_statements"
    listing = next(s for s in report["statements"] if LIST_TEXT in s["query"])
    assert listing["calls"] >= 3
    labels = {v["label"] for v in listing["variants"]}
    assert {
        "no filter",
        "status=SHIPPED",
        "partner_id=" + _newest_partner(seeded_dsn),
    } <= labels  # most common
    one = next(v for v in listing["variants"] if v["label"] == "status=SHIPPED")
    assert one["generic"]["analyzed"]
    assert one["custom"]["execution_ms"] is not None
    assert one["custom"]["scans"][0]["relation"] == "orders"  # the whole table is read: no index yet
    assert one["custom"]["scans"][0]["rows_examined"] > 10_000


async def test_analyse_reports_hot_and_cold_rows_and_proposes_the_kit(seeded_dsn: str) -> None:
    report = mesdb_json(seeded_dsn, "analyse")
    assert report["hot_rows"] + report["archivable_rows"] == 20_000
    assert report["archivable_rows"] > report["hot_rows"]
    proposals = "\n".join(report["proposals"])
    for wanted in ("mesdb_orders_active_idx", "mesdb_history_order_idx", "plan_cache_mode", "mesdb split"):
        assert wanted in proposals
    active = next(p for p in report["proposals"] if p.startswith("create mesdb_orders_active_idx"))
    assert "now: list status=" in active  # what the index's target calls cost today
    assert "measured alone by `mesdb apply`" in active
    assert {t["name"] for t in report["tables"]} >= {"orders", "order_status_history", "price_calculations"}


def test_analyse_without_a_database_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "MESDB_DSN"}
    done = mesdb(None, "analyse", env=env)
    assert done.returncode == 2
    assert "--dsn" in done.stderr


def test_analyse_of_an_unreachable_server_says_so_with_exit_code_3() -> None:
    done = mesdb("postgresql://postgres@127.0.0.1:1/mes", "analyse")
    assert done.returncode == 3
    assert "cannot connect" in done.stderr


def test_analyse_of_a_database_without_the_legacy_tables_names_them(pg_dsn: str) -> None:
    done = mesdb(pg_dsn, "analyse")
    assert done.returncode == 1
    assert "missing table(s) orders, order_status_history, price_calculations" in done.stderr


async def test_analyse_after_the_split_shows_the_active_list_reading_no_cold_row(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "apply", "--no-measure")
    mesdb_json(seeded_dsn, "split")
    await _operator_lists(seeded_dsn)
    report = mesdb_json(seeded_dsn, "analyse")
    assert report["split_done"]
    assert report["archivable_rows"] == 0  # all moved; hot_rows: what stays in orders
    listing = next(s for s in report["statements"] if LIST_TEXT in s["query"])
    active = next(v for v in listing["variants"] if v["label"].startswith("status="))
    assert [s["relation"] for s in active["custom"]["scans"]] == ["orders"]  # the archive is excluded
    unfiltered = next(v for v in listing["variants"] if v["label"] == "no filter")
    assert {s["relation"] for s in unfiltered["custom"]["scans"]} == {"orders", "orders_archive"}


def test_analyse_prints_a_report_a_dba_reads(seeded_dsn: str) -> None:
    done = mesdb(seeded_dsn, "analyse")
    assert done.returncode == 0, done.stderr
    assert "statements from" in done.stdout
    assert "the kit would:" in done.stdout


#: a write in disguise: a SELECT whose CTE updates every order up to $1 (analyse picks max(id) for it)
DATA_MODIFYING = (
    "WITH touched AS (UPDATE orders SET customer = upper(customer) WHERE id <= $1 RETURNING id) "
    "SELECT count(*) FROM touched"
)


def test_analyse_never_executes_a_write_found_in_pg_stat_statements(seeded_dsn: str) -> None:
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(  # this database's entries only: the seed's would rank above the two below
            "SELECT pg_stat_statements_reset(0::oid, oid, 0::bigint) FROM pg_database "
            "WHERE datname = current_database()"
        )
        conn.execute(DATA_MODIFYING.replace("$1", "%s"), (0,))  # recorded with its $1, touching nothing
        conn.execute("SELECT nextval('orders_id_seq') FROM orders WHERE id = %s", (0,))
        conn.execute("SELECT count(*) FROM orders WHERE status = %s", ("SHIPPED",))
    rows, sequence = dict(query(seeded_dsn, ROWS)), query(seeded_dsn, "SELECT last_value FROM orders_id_seq")
    report = mesdb_json(seeded_dsn, "analyse")
    assert dict(query(seeded_dsn, ROWS)) == rows  # not one order changed
    assert query(seeded_dsn, "SELECT last_value FROM orders_id_seq") == sequence
    texts = {s["query"]: s for s in report["statements"]}
    cte = next(s for q, s in texts.items() if q.startswith("WITH touched"))
    assert cte["variants"], "explained all the same (without ANALYZE)"
    for variant in cte["variants"]:
        for plan in (variant["generic"], variant["custom"]):
            assert not plan["analyzed"]
            assert "data-modifying UPDATE" in plan["not_run_because"]
    volatile = next(s for q, s in texts.items() if "nextval" in q)
    assert "nextval" in volatile["variants"][0]["custom"]["not_run_because"]
    listing = next(s for q, s in texts.items() if q.startswith("SELECT count(*) FROM orders"))
    assert listing["variants"][0]["custom"]["analyzed"]  # plain reads still are
