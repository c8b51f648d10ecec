"""Connections: psycopg 3, autocommit (``CREATE INDEX CONCURRENTLY`` refuses transactions), short
lock waits so a DDL step never queues the MES's traffic behind itself."""

from __future__ import annotations

import os

import psycopg

from mesdb import limits
from mesdb.errors import EXIT_CONNECT, EXIT_USAGE, KitError


def resolve_dsn(dsn: str | None) -> str:
    """``--dsn``, else ``$MESDB_DSN``, else libpq's own ``PG*`` variables ("" lets libpq use them)."""
    if dsn:
        return dsn
    if os.environ.get("MESDB_DSN"):
        return os.environ["MESDB_DSN"]
    if any(os.environ.get(v) for v in ("PGHOST", "PGDATABASE", "PGSERVICE", "PGPORT")):
        return ""
    raise KitError(
        "no database given: use --dsn, $MESDB_DSN or the PG* variables of libpq", exit_code=EXIT_USAGE
    )


def connect(dsn: str) -> psycopg.Connection:
    """An autocommit connection named ``mesdb`` (visible in pg_stat_activity), with the run's
    ``lock_timeout`` (:mod:`mesdb.limits`)."""
    try:
        # a startup option, so that ``RESET lock_timeout`` comes back to it
        return psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=10,
            application_name="mesdb",
            options=f"-c lock_timeout={limits.current().lock_timeout_ms}ms",
        )
    except psycopg.Error as exc:
        raise KitError(f"cannot connect: {str(exc).strip()}", exit_code=EXIT_CONNECT) from exc


def exists(conn: psycopg.Connection, relation: str) -> bool:
    """True when ``relation`` (schema-qualified or on the search path) exists."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()
    return bool(row and row[0])


def require_legacy_tables(conn: psycopg.Connection) -> None:
    """Fail with a clear message on a database without the documented legacy tables."""
    from mesdb.legacy import TABLES

    missing = [t for t in TABLES if not exists(conn, t)]
    if missing:
        raise KitError(f"not a legacy MES database: missing table(s) {', '.join(missing)}")


#: sessions other than ours holding a granted lock on one of the kit's tables, oldest transaction first
_HOLDERS = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.state, '?'),
       extract(epoch FROM now() - a.xact_start)::int, string_agg(DISTINCT l.mode, '/')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND l.locktype = 'relation'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation = ANY(ARRAY[to_regclass('public.orders'), to_regclass('public.order_status_history'),
                             to_regclass('public.price_calculations'), to_regclass('public.orders_archive')])
GROUP BY a.pid, a.application_name, a.state, a.xact_start
ORDER BY a.xact_start NULLS LAST LIMIT 5
"""


def lock_holders(conn: psycopg.Connection) -> str:
    """Who holds locks on the legacy tables now, for the DBA's message ("" when nobody or unknown)."""
    try:
        rows = conn.execute(_HOLDERS).fetchall()
    except psycopg.Error:
        return ""
    return "; ".join(
        f"pid {pid} ({app}, {state}, transaction open {age} s, {modes})"
        for pid, app, state, age, modes in rows
    )
