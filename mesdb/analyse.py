"""``mesdb analyse``: what the legacy's statements cost, which rows they touch, what the kit would do.

Sources: ``pg_stat_statements`` (created here when the library is preloaded; the statements are the
legacy's own text with ``$n``), the statistics views, and ``EXPLAIN (ANALYZE, BUFFERS)`` of each
read under a generic and a custom plan. Without ``pg_stat_statements`` the documented legacy
statements are analysed instead, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import psycopg

from mesdb import journal, legacy
from mesdb.catalogue import INDEXES, PLAN_CACHE_SETTING, SETTING_SERVES
from mesdb.db import exists, require_legacy_tables
from mesdb.ddl import index_state
from mesdb.measure import measure
from mesdb.mover import DEFAULT_AGE
from mesdb.params import variants
from mesdb.plans import PlanSummary, explain, parameter_types
from mesdb.split import SPLIT
from mesdb.tuning import current_setting_value

_TABLES_RE = r"\m(orders|order_status_history|price_calculations)\M"


@dataclass(frozen=True, slots=True)
class TableStats:
    name: str
    rows: int
    table_bytes: int
    indexes_bytes: int
    seq_scans: int
    seq_rows_read: int
    index_scans: int
    dead_rows: int


@dataclass(frozen=True, slots=True)
class IndexStats:
    name: str
    table: str
    bytes: int
    scans: int
    valid: bool
    definition: str


@dataclass(frozen=True, slots=True)
class VariantCost:
    label: str
    generic: PlanSummary
    custom: PlanSummary


@dataclass(frozen=True, slots=True)
class StatementCost:
    query: str
    calls: int | None
    mean_ms: float | None
    total_ms: float | None
    variants: list[VariantCost]


@dataclass(frozen=True, slots=True)
class Analysis:
    server_version: str
    statements_source: str  # "pg_stat_statements" or why not
    plan_cache_mode: str
    hot_rows: int
    archivable_rows: int
    archive_age_days: float
    split_done: bool
    tables: list[TableStats]
    indexes: list[IndexStats]
    statements: list[StatementCost]
    proposals: list[str] = field(default_factory=list)


def _statements_source(conn: psycopg.Connection) -> tuple[str, bool]:
    available = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements')"
    ).fetchone()[0]  # type: ignore[index]
    if not available:
        return "missing: the pg_stat_statements extension is not installed (postgresql-contrib)", False
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    except psycopg.Error as exc:
        return f"missing: CREATE EXTENSION pg_stat_statements failed ({exc})", False
    try:
        conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return (
            "missing: pg_stat_statements is not loaded — add it to shared_preload_libraries and "
            "restart PostgreSQL"
        ), False
    row = conn.execute(
        "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone()
    if not (row and row[0]):
        return (
            "pg_stat_statements (this role's statements only: GRANT pg_read_all_stats to see the MES's)"
        ), True
    return "pg_stat_statements", True


def _legacy_statements(conn: psycopg.Connection, limit: int) -> list[tuple[str, int, float, float]]:
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT query, calls, mean_exec_time, total_exec_time FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query ~* %s AND query ~* '^\\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\\M' "
            "AND query !~* '(pg_catalog|mesdb|pg_stat|EXPLAIN)' ORDER BY total_exec_time DESC LIMIT %s",
            (_TABLES_RE, limit),
        ).fetchall()
    ]


def _tables(conn: psycopg.Connection) -> list[TableStats]:
    names = [*legacy.TABLES, legacy.ARCHIVE]
    rows = conn.execute(
        "SELECT relname, n_live_tup, pg_table_size(relid), pg_indexes_size(relid), seq_scan, seq_tup_read, "
        "coalesce(idx_scan, 0), n_dead_tup FROM pg_stat_user_tables WHERE schemaname = 'public' "
        "AND relname = ANY(%s) ORDER BY relname",
        (names,),
    ).fetchall()
    return [TableStats(*r) for r in rows]


def _indexes(conn: psycopg.Connection) -> list[IndexStats]:
    rows = conn.execute(
        "SELECT s.indexrelname, s.relname, pg_relation_size(s.indexrelid), s.idx_scan, i.indisvalid, "
        "pg_get_indexdef(s.indexrelid) FROM pg_stat_user_indexes s "
        "JOIN pg_index i ON i.indexrelid = s.indexrelid "
        "WHERE s.schemaname = 'public' AND s.relname = ANY(%s) ORDER BY s.relname, s.indexrelname",
        ([*legacy.TABLES, legacy.ARCHIVE],),
    ).fetchall()
    return [IndexStats(*r) for r in rows]


def _hot_cold(conn: psycopg.Connection, age: timedelta) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE NOT (status = ANY(%s) AND status_changed_at < now() - %s)), "
        "count(*) FILTER (WHERE status = ANY(%s) AND status_changed_at < now() - %s) FROM orders",
        (list(legacy.TERMINAL), age, list(legacy.TERMINAL), age),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _cost(conn: psycopg.Connection, query: str) -> list[VariantCost]:
    try:
        types = parameter_types(conn, query)
        return [
            VariantCost(
                v.label,
                explain(conn, query, v.values, mode="generic"),
                explain(conn, query, v.values, mode="custom"),
            )
            for v in variants(conn, query, types)
        ]
    except psycopg.Error:  # a statement of another schema version, a dropped table: skip it
        return []


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"


def _proposals(conn: psycopg.Connection, analysis: Analysis) -> list[str]:
    found = [
        f"drop the INVALID index {i.name} (a failed concurrent build) and build it again"
        for i in analysis.indexes
        if not i.valid
    ]
    for spec in INDEXES:
        if index_state(conn, spec.name) is None:
            found.append(
                f"create {spec.name} ON {spec.table} {spec.columns}: {spec.why}"
                + "".join(
                    f"\n      now: {m.label}: custom plan {_ms(m.custom.execution_ms)}, rows examined "
                    f"{m.custom.rows_examined:,} — with the index: measured alone by `mesdb apply`"
                    for m in measure(conn, spec.serves)
                    if spec.serves
                )
            )
    if analysis.plan_cache_mode != PLAN_CACHE_SETTING[1] and any(p.startswith("create ") for p in found):
        found.append(
            f"ALTER DATABASE … SET plan_cache_mode = {PLAN_CACHE_SETTING[1]}: a generic plan cannot use "
            "the partial index for `$1::text IS NULL OR status = $1`; its effect needs the indexes "
            "above, so `mesdb apply` measures it (generic → custom plan) after building them"
        )
    elif analysis.plan_cache_mode != PLAN_CACHE_SETTING[1]:
        found.append(
            f"ALTER DATABASE … SET plan_cache_mode = {PLAN_CACHE_SETTING[1]}: a generic plan cannot use "
            "the partial index for `$1::text IS NULL OR status = $1`; its effect alone, measured:"
            + "".join(
                f"\n      {m.label}: {_ms(m.generic.execution_ms)} → {_ms(m.custom.execution_ms)} "
                f"(generic → custom plan), rows examined {m.generic.rows_examined:,} → "
                f"{m.custom.rows_examined:,}"
                for m in measure(conn, SETTING_SERVES)
            )
        )
    total = analysis.hot_rows + analysis.archivable_rows
    if not analysis.split_done and total and analysis.archivable_rows / total > 0.5:
        found.append(
            f"hot/cold split: {analysis.archivable_rows:,} of {total:,} orders "
            f"({100 * analysis.archivable_rows / total:.1f} %) are CLOSED/CANCELLED for more than "
            f"{analysis.archive_age_days:g} days — `mesdb split` moves them to {legacy.ARCHIVE}"
        )
    elif analysis.split_done and analysis.archivable_rows:
        found.append(f"{analysis.archivable_rows:,} orders are due for the archive: `mesdb archive`")
    return found


def analyse(conn: psycopg.Connection, *, age: timedelta = DEFAULT_AGE, limit: int = 10) -> Analysis:
    """The whole report (reads only, apart from ``CREATE EXTENSION pg_stat_statements``)."""
    require_legacy_tables(conn)
    source, have_stats = _statements_source(conn)
    found = _legacy_statements(conn, limit) if have_stats else []
    if not found:
        found = [(q, None, None, None) for q in legacy.DOCUMENTED]  # type: ignore[misc]
        if have_stats:
            source = "pg_stat_statements (no legacy statement recorded yet: the documented ones instead)"
    statements = [StatementCost(q, calls, mean, total, _cost(conn, q)) for q, calls, mean, total in found]
    hot, cold = _hot_cold(conn, age) if not exists(conn, legacy.ARCHIVE) else (0, 0)
    split_done = journal.is_applied(conn, SPLIT)
    if split_done:
        hot_row = conn.execute("SELECT count(*) FROM ONLY orders").fetchone()
        due = conn.execute(
            "SELECT count(*) FROM ONLY orders WHERE status = ANY(%s) AND status_changed_at < now() - %s",
            (list(legacy.TERMINAL), age),
        ).fetchone()
        hot, cold = int(hot_row[0]) if hot_row else 0, int(due[0]) if due else 0
    mode = (
        current_setting_value(conn, PLAN_CACHE_SETTING[0])
        or conn.execute("SELECT current_setting('plan_cache_mode')").fetchone()[0]  # type: ignore[index]
    )
    analysis = Analysis(
        server_version=conn.execute("SELECT current_setting('server_version')").fetchone()[0],  # type: ignore[index]
        statements_source=source,
        plan_cache_mode=mode,
        hot_rows=hot,
        archivable_rows=cold,
        archive_age_days=age.total_seconds() / 86400,
        split_done=split_done,
        tables=_tables(conn),
        indexes=_indexes(conn),
        statements=statements,
    )
    analysis.proposals.extend(_proposals(conn, analysis))
    return analysis
