"""Connections: psycopg 3, autocommit (``CREATE INDEX CONCURRENTLY`` refuses transactions), short
lock waits so a DDL step never queues the MES's traffic behind itself."""

from __future__ import annotations

import os

import psycopg

from mesdb.errors import EXIT_CONNECT, EXIT_USAGE, KitError

#: How long a DDL statement may wait for its lock before it gives up and is retried: a waiting
#: ALTER blocks every later query on the table, so it must never wait long.
LOCK_TIMEOUT = "2s"


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
    """An autocommit connection named ``mesdb`` (visible in pg_stat_activity)."""
    try:
        # a startup option, so that ``RESET lock_timeout`` comes back to it
        return psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=10,
            application_name="mesdb",
            options=f"-c lock_timeout={LOCK_TIMEOUT}",
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
