"""``EXPLAIN (ANALYZE, BUFFERS)`` of one statement with ``$n`` parameters, as a small summary.

The statement is prepared, then explained under ``plan_cache_mode = force_custom_plan`` (the
planner sees the values) or ``force_generic_plan`` (what a pooled prepared statement runs after
five executions when the generic plan looks cheap enough): PostgreSQL 15 has no
``EXPLAIN (GENERIC_PLAN)``. Only plain reads (:mod:`mesdb.statements`, by PostgreSQL's parser) are
run (``ANALYZE``), inside a ``READ ONLY`` transaction that is rolled back; anything else is explained,
not executed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from mesdb.legacy import ARCHIVE
from mesdb.statements import read_only_reason

Mode = Literal["custom", "generic"]
_STATEMENT = "mesdb_explain"


@dataclass(frozen=True, slots=True)
class ScanCost:
    """Rows one relation's scans looked at (returned + filtered out), and whether they are cold."""

    relation: str
    rows_examined: int
    cold: bool


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """What one execution cost: time, planner cost, buffers, the plan's shape, rows per relation."""

    mode: Mode
    analyzed: bool
    total_cost: float
    execution_ms: float | None
    planning_ms: float | None
    rows_returned: int | None
    shared_hit: int
    shared_read: int
    shape: str
    scans: list[ScanCost] = field(default_factory=list)
    #: why it was explained without ANALYZE (not a plain read), None when it ran
    not_run_because: str | None = None

    @property
    def rows_examined(self) -> int:
        return sum(s.rows_examined for s in self.scans)

    @property
    def cold_rows_examined(self) -> int:
        return sum(s.rows_examined for s in self.scans if s.cold)


def parameter_types(conn: psycopg.Connection, query: str) -> list[str]:
    """The ``$n`` types PostgreSQL infers for ``query`` (``[]`` for none)."""
    _deallocate(conn)
    conn.execute(sql.SQL("PREPARE {} AS ").format(sql.Identifier(_STATEMENT)).as_string(conn) + query)
    try:
        row = conn.execute(
            "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s", (_STATEMENT,)
        ).fetchone()
    finally:
        _deallocate(conn)
    return list(row[0]) if row and row[0] else []


def explain(conn: psycopg.Connection, query: str, params: list[Any], *, mode: Mode) -> PlanSummary:
    """Plan (and, for plain reads, run) ``query`` with ``params`` under the given plan cache mode."""
    not_read = read_only_reason(conn, query)
    _deallocate(conn)
    conn.execute(sql.SQL("PREPARE {} AS ").format(sql.Identifier(_STATEMENT)).as_string(conn) + query)
    try:
        options = "FORMAT JSON" if not_read else "ANALYZE, BUFFERS, FORMAT JSON"
        call = sql.SQL("EXPLAIN ({}) EXECUTE {}").format(sql.SQL(options), sql.Identifier(_STATEMENT))
        if params:
            call = sql.SQL("{}({})").format(call, sql.SQL(", ").join(sql.Literal(p) for p in params))
        # READ ONLY and rolled back whatever happens: even a read the parser let through cannot write
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(sql.SQL("SET LOCAL plan_cache_mode = {}").format(sql.Literal(f"force_{mode}_plan")))
            row = conn.execute(call).fetchone()
    finally:
        _deallocate(conn)
    assert row is not None
    summary = summarise(row[0][0], mode=mode, analyzed=not_read is None)
    return dataclasses.replace(summary, not_run_because=not_read)


def summarise(doc: dict[str, Any], *, mode: Mode, analyzed: bool) -> PlanSummary:
    """The summary of one ``EXPLAIN (FORMAT JSON)`` document."""
    root = doc["Plan"]
    scans: dict[str, int] = {}
    shape: list[str] = []
    _walk(root, scans, shape)
    return PlanSummary(
        mode=mode,
        analyzed=analyzed,
        total_cost=float(root["Total Cost"]),
        execution_ms=doc.get("Execution Time"),
        planning_ms=doc.get("Planning Time"),
        rows_returned=int(root["Actual Rows"] * root.get("Actual Loops", 1)) if analyzed else None,
        shared_hit=int(root.get("Shared Hit Blocks", 0)),
        shared_read=int(root.get("Shared Read Blocks", 0)),
        shape=" > ".join(shape),
        scans=[ScanCost(rel, rows, rel == ARCHIVE) for rel, rows in scans.items()],
    )


def _walk(node: dict[str, Any], scans: dict[str, int], shape: list[str]) -> None:
    label = node["Node Type"]
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    if "Relation Name" in node:
        label += f" on {node['Relation Name']}"
        loops = node.get("Actual Loops", 1)
        seen = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        ) * loops
        scans[node["Relation Name"]] = scans.get(node["Relation Name"], 0) + int(seen)
    if label not in shape:
        shape.append(label)
    for child in node.get("Plans", []):
        _walk(child, scans, shape)


def _deallocate(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(_STATEMENT))) if _prepared(conn) else None


def _prepared(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", (_STATEMENT,)
    ).fetchone()
    return bool(row and row[0])
