"""Parameter values for a statement seen only as text with ``$n`` placeholders.

The kit knows nothing beyond the documented tables, so it reads the statement: ``LIMIT $n`` → 50,
``OFFSET $n`` → 0, ``column = $n`` → a real value of that column (for ``status`` the most common
*active* status: the operators' case), and ``$n IS NULL OR …`` marks an optional filter. Each
optional filter is tried alone and all of them unset, so every path of the legacy's generic
statement is measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from mesdb.legacy import ACTIVE, ORDERS


@dataclass(frozen=True, slots=True)
class Variant:
    """One set of values for a statement's parameters, and a label saying which filters are set."""

    label: str
    values: list[Any]


def _column_of(query: str, n: int) -> str | None:
    p = rf"\${n}(?!\d)(?:::[\w\[\]]+)?"
    for pattern in (rf"(\w+)\s*(?:=|>=?|<=?)\s*(?:ANY\s*\(\s*)?{p}", rf"{p}\s*(?:=|>=?|<=?)\s*(\w+)"):
        if match := re.search(pattern, query, re.I):
            return match.group(1).lower()
    return None


def _table_of(query: str) -> str:
    match = re.search(r"\bFROM\s+(?:ONLY\s+)?([\w.]+)", query, re.I)
    return match.group(1) if match else ORDERS


def _sample(conn: psycopg.Connection, table: str, column: str, type_name: str) -> Any:
    if column == "status" and table == ORDERS:
        row = conn.execute(
            "SELECT status FROM orders WHERE status = ANY(%s) GROUP BY status ORDER BY count(*) DESC LIMIT 1",
            (list(ACTIVE),),
        ).fetchone()
        return row[0] if row else ACTIVE[0]
    if column in ("id", "order_id"):
        known = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        source = table if column == "id" and known and known[0] else ORDERS  # else a CTE's name
        row = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(sql.Identifier(source))).fetchone()
        return row[0] if row else 0
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL ORDER BY ctid DESC LIMIT 1").format(
                    c=sql.Identifier(column), t=sql.Identifier(table)
                )
            ).fetchone()
    except psycopg.Error:
        row = None
    return row[0] if row else _neutral(type_name)


def _neutral(type_name: str) -> Any:
    if type_name.endswith("[]"):
        return "{}"
    if type_name in ("integer", "bigint", "smallint", "numeric"):
        return 0
    return None


def variants(conn: psycopg.Connection, query: str, types: list[str]) -> list[Variant]:
    """The parameter sets to measure ``query`` with (one when it has no optional filter)."""
    table = _table_of(query)
    fixed: list[Any] = []
    optional: dict[int, tuple[str, Any]] = {}
    for i, type_name in enumerate(types, start=1):
        if re.search(rf"LIMIT\s+\${i}(?!\d)", query, re.I):
            fixed.append(50)
            continue
        if re.search(rf"OFFSET\s+\${i}(?!\d)", query, re.I):
            fixed.append(0)
            continue
        column = _column_of(query, i)
        value = _sample(conn, table, column, type_name) if column else _neutral(type_name)
        fixed.append(value)
        if re.search(rf"\${i}(?!\d)(?:::[\w\[\]]+)?\s+IS\s+NULL", query, re.I):
            optional[i] = (column or f"${i}", value)
    if not optional:
        return [Variant("", fixed)]
    unset = [None if i + 1 in optional else v for i, v in enumerate(fixed)]
    found = [Variant("no filter", unset)]
    for i, (column, value) in optional.items():
        values = list(unset)
        values[i - 1] = value
        found.append(Variant(f"{column}={value}", values))
    return found
