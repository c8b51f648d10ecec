"""The kit's own schema ``mesdb``: what it added (so revert removes exactly that) and the split's
progress (so an interrupted migration resumes)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS mesdb;
CREATE TABLE IF NOT EXISTS mesdb.applied (
    name       text PRIMARY KEY,          -- index, setting or split step the kit added
    kind       text NOT NULL,             -- 'index' | 'setting' | 'split'
    undo_sql   text NOT NULL,             -- what removes it again (run by revert, newest first)
    detail     jsonb NOT NULL DEFAULT '{}',
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS mesdb.moves (  -- one row per committed batch of the split / archiver
    id         bigserial PRIMARY KEY,
    direction  text NOT NULL,             -- 'archive' | 'restore'
    rows_moved integer NOT NULL,
    checksum   text NOT NULL,             -- md5 of the moved rows, equal on both sides before commit
    moved_at   timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class Applied:
    """One change the kit made."""

    name: str
    kind: str
    undo_sql: str


def ensure(conn: psycopg.Connection) -> None:
    """Create the kit's schema if missing (idempotent)."""
    conn.execute(SCHEMA)


def record(conn: psycopg.Connection, name: str, kind: str, undo_sql: str, detail: dict[str, object]) -> None:
    """Remember that the kit made change ``name``."""
    conn.execute(
        "INSERT INTO mesdb.applied (name, kind, undo_sql, detail) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (name, kind, undo_sql, Jsonb(detail)),
    )


def forget(conn: psycopg.Connection, name: str) -> None:
    """Drop the record of ``name`` (after its undo ran)."""
    conn.execute("DELETE FROM mesdb.applied WHERE name = %s", (name,))


def applied(conn: psycopg.Connection, kind: str | None = None) -> list[Applied]:
    """What the kit made, newest first (the order revert undoes it in); [] before any apply."""
    if not conn.execute("SELECT to_regclass('mesdb.applied') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
        return []
    rows = conn.execute(
        "SELECT name, kind, undo_sql FROM mesdb.applied WHERE %s::text IS NULL OR kind = %s "
        "ORDER BY applied_at DESC, name DESC",
        (kind, kind),
    ).fetchall()
    return [Applied(*row) for row in rows]


def is_applied(conn: psycopg.Connection, name: str) -> bool:
    """True when the kit recorded ``name``."""
    return any(a.name == name for a in applied(conn))
