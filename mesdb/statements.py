"""Which statements the kit may execute under ``EXPLAIN ANALYZE``: plain reads only, decided by
PostgreSQL's own parser (pglast wraps libpg_query), never by matching the text.

``EXPLAIN ANALYZE`` runs the statement. A text found in ``pg_stat_statements`` may be a write in
disguise — ``WITH moved AS (UPDATE …) SELECT …``, ``SELECT … FOR UPDATE``, ``SELECT nextval(…)``,
``SELECT … INTO`` — so a statement counts as a read only when it parses as exactly one ``SELECT``
with no data-modifying statement anywhere in it (CTEs and sub-queries included), no row locks, no
``INTO``, and only functions that every candidate of that name in ``pg_proc`` declares ``IMMUTABLE``
or ``STABLE``; everything else is explained without ``ANALYZE``. The reads themselves run in a
``READ ONLY`` transaction that is rolled back (:mod:`mesdb.plans`): a second line of defence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
from pglast.parser import ParseError, parse_sql_json

#: parse-tree nodes that make a statement more than a read
_WRITES = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})
_NOT_READ_KEYS = frozenset({"lockingClause", "intoClause"})


def _nodes(tree: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of the JSON parse tree, depth first."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key, value
            yield from _nodes(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _nodes(item)


def _function_names(tree: Any) -> set[tuple[str | None, str]]:
    found: set[tuple[str | None, str]] = set()
    for key, value in _nodes(tree):
        if key == "FuncCall":
            parts = [p["String"]["sval"] for p in value.get("funcname", [])]
            found.add((parts[-2] if len(parts) > 1 else None, parts[-1]))
    return found


def parse(query: str) -> dict[str, Any] | None:
    """The one statement of ``query`` as a JSON parse tree; ``None`` when it is not exactly one."""
    try:
        statements = json.loads(parse_sql_json(query)).get("stmts", [])
    except ParseError:
        return None
    if len(statements) != 1:
        return None
    stmt: dict[str, Any] = statements[0]["stmt"]
    return stmt


def unknown_or_volatile(conn: psycopg.Connection, functions: set[tuple[str | None, str]]) -> list[str]:
    """The functions of ``functions`` that are volatile in ``pg_proc`` (any candidate) or unknown."""
    suspect = []
    for schema, name in sorted(functions, key=lambda f: (f[0] or "", f[1])):
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE provolatile = 'v') FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = %s "
            "AND (%s::text IS NULL OR n.nspname = %s)",
            (name, schema, schema),
        ).fetchone()
        if row is None or row[0] == 0 or row[1] > 0:
            suspect.append(f"{schema}.{name}" if schema else name)
    return suspect


def shape_reason(query: str) -> tuple[str | None, set[tuple[str | None, str]]]:
    """Why ``query``'s shape is not a plain read (``None``: it is), and the functions it calls
    (``(schema or None, name)``), which :func:`read_only_reason` then looks up."""
    stmt = parse(query)
    if stmt is None:
        return "not exactly one statement PostgreSQL's parser accepts", set()
    if "SelectStmt" not in stmt:
        return f"a {next(iter(stmt), 'statement')}, not a SELECT", set()
    for key, _ in _nodes(stmt):
        if key in _WRITES:
            return f"contains a data-modifying {key.removesuffix('Stmt').upper()}", set()
        if key in _NOT_READ_KEYS:
            return (
                "takes row locks (FOR UPDATE/SHARE)" if key == "lockingClause" else "SELECT … INTO"
            ), set()
    return None, _function_names(stmt)


def read_only_reason(conn: psycopg.Connection, query: str) -> str | None:
    """``None`` when ``query`` is a plain read (safe under ``EXPLAIN ANALYZE``), else why not."""
    reason, functions = shape_reason(query)
    if reason is not None:
        return reason
    suspect = unknown_or_volatile(conn, functions)
    return f"calls volatile or unknown function(s) {', '.join(suspect)}" if suspect else None
