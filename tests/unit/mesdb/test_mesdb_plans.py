"""Reading an ``EXPLAIN (FORMAT JSON)`` document: rows examined per relation, cold rows, shape."""

from __future__ import annotations

from mesdb.legacy import LIST
from mesdb.plans import summarise
from mesdb.statements import shape_reason

PLAN = {
    "Plan": {
        "Node Type": "Limit",
        "Total Cost": 12.5,
        "Actual Rows": 50,
        "Actual Loops": 1,
        "Shared Hit Blocks": 7,
        "Shared Read Blocks": 2,
        "Plans": [
            {
                "Node Type": "Merge Append",
                "Actual Rows": 50,
                "Actual Loops": 1,
                "Plans": [
                    {
                        "Node Type": "Index Scan",
                        "Index Name": "mesdb_orders_created_idx",
                        "Relation Name": "orders",
                        "Actual Rows": 40,
                        "Actual Loops": 1,
                        "Rows Removed by Filter": 10,
                    },
                    {
                        "Node Type": "Seq Scan",
                        "Relation Name": "orders_archive",
                        "Actual Rows": 11,
                        "Actual Loops": 2,
                        "Rows Removed by Filter": 1000,
                    },
                ],
            }
        ],
    },
    "Planning Time": 0.2,
    "Execution Time": 1.5,
}


def test_rows_examined_count_filtered_rows_and_loops_and_the_archive_as_cold() -> None:
    summary = summarise(PLAN, mode="custom", analyzed=True)
    assert [(s.relation, s.rows_examined, s.cold) for s in summary.scans] == [
        ("orders", 50, False),
        ("orders_archive", 2022, True),
    ]
    assert (summary.rows_examined, summary.cold_rows_examined, summary.rows_returned) == (2072, 2022, 50)
    assert summary.shape == (
        "Limit > Merge Append > Index Scan using mesdb_orders_created_idx on orders > "
        "Seq Scan on orders_archive"
    )
    assert (summary.execution_ms, summary.shared_hit, summary.shared_read) == (1.5, 7, 2)


def test_only_plain_reads_are_executed_under_explain_analyze() -> None:
    assert shape_reason(LIST) == (None, set())
    assert shape_reason("SELECT count(*) FROM orders WHERE status = $1") == (None, {(None, "count")})
    assert shape_reason("SELECT pg_catalog.lower(customer) FROM orders")[1] == {("pg_catalog", "lower")}
    not_reads = {
        "SELECT status FROM orders WHERE id = $1 FOR UPDATE": "row locks",
        "SELECT * FROM (SELECT id FROM orders FOR SHARE) s": "row locks",
        "UPDATE orders SET status = $2 WHERE id = $1 RETURNING *": "UpdateStmt",
        "  insert into orders (source) values ($1)": "InsertStmt",
        "WITH moved AS (UPDATE orders SET customer = $1 RETURNING id) SELECT count(*) FROM moved": "UPDATE",
        "SELECT * FROM o WHERE id IN (WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d)": (
            "DELETE"
        ),
        "SELECT * INTO copy_of_orders FROM orders": "INTO",
        "SELECT 1; DELETE FROM orders": "exactly one",
        "SELECT FROM WHERE ((": "exactly one",
    }
    for query, why in not_reads.items():
        assert why in (shape_reason(query)[0] or ""), query
