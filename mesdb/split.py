"""The hot/cold split: archived orders move out of the legacy's ``orders`` into ``orders_archive``.

``orders_archive`` is an inheritance child of ``orders`` (``ALTER TABLE … INHERIT``): every legacy
read of ``orders`` still sees every order, and a status filter on an active status excludes the
archive at plan time (its CHECK constraint, ``constraint_exclusion = partition``), so the hot path
reads only the small parent. Why not a declarative partition: docs/mes-data.md ("What partitioning
requires of the legacy schema") — in short, PostgreSQL requires the partition key in every unique
constraint, and the legacy's ``ON CONFLICT (source, external_ref)`` then fails at plan time.

What the kit changes around it (each undone by :func:`unsplit`):

* the foreign keys to ``orders`` (``order_status_history``, ``price_calculations``) see only the
  parent's rows: they become constraint triggers checking all of ``orders``;
* ``orders``'s unique ``(source, external_ref)`` covers the parent only: a BEFORE INSERT trigger
  skips an insert whose key is already archived, which is what the legacy's ``ON CONFLICT DO
  NOTHING`` would have done (the legacy then reads the existing order, as it always does).

Rows move in batches, each one transaction: lock the batch (``SKIP LOCKED``), copy, compare count
and checksum of both copies, delete the original, commit. Readers see every order exactly once at
every commit; an interrupted run resumes where it stopped (the rows still in ``orders`` are simply
the ones not yet moved).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import psycopg
from psycopg import sql

from mesdb import journal
from mesdb.catalogue import INDEXES
from mesdb.db import exists, require_legacy_tables
from mesdb.ddl import retrying
from mesdb.errors import KitError
from mesdb.legacy import ARCHIVE, ORDERS, TERMINAL, TERMINAL_SQL

logger = logging.getLogger("mesdb")
SPLIT = f"split:{ARCHIVE}"
KEYS = "split:foreign-keys"
DEFAULT_AGE = timedelta(days=30)
SWEEPS = 5
Direction = Literal["archive", "restore"]

_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION mesdb.order_must_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN  -- the foreign key to orders(id), over the parent and the archive
    IF NEW.order_id IS NOT NULL THEN
        PERFORM 1 FROM public.orders WHERE id = NEW.order_id FOR KEY SHARE;
        IF NOT FOUND THEN  -- moved by a batch that committed while we waited for its lock: the
            -- next statement's snapshot sees the archived copy
            PERFORM 1 FROM public.orders WHERE id = NEW.order_id FOR KEY SHARE;
        END IF;
        IF NOT FOUND THEN
            RAISE foreign_key_violation USING MESSAGE = format(
                'insert or update on table "%s" violates foreign key: order %s is not in "orders"',
                TG_TABLE_NAME, NEW.order_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION mesdb.skip_archived_duplicate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN  -- (source, external_ref) unique over the parent and the archive: ON CONFLICT DO NOTHING
    IF NEW.external_ref IS NULL OR coalesce(current_setting('mesdb.moving', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    -- still in the hot table: its unique key arbitrates. The lock waits for a batch moving that
    -- row; once the batch commits the row is gone here, and the next statement sees it archived.
    PERFORM 1 FROM ONLY public.orders o
        WHERE o.source = NEW.source AND o.external_ref = NEW.external_ref FOR KEY SHARE;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM public.{ARCHIVE} a
               WHERE a.source = NEW.source AND a.external_ref = NEW.external_ref) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
"""  # noqa: S608 (constant names only)
_GUARD = "mesdb_skip_archived_duplicate"
_FK_TRIGGER = "mesdb_order_must_exist"


@dataclass(frozen=True, slots=True)
class MoveReport:
    """Rows moved by one run, in how many batches, and how long it took."""

    direction: Direction
    rows: int
    batches: int
    seconds: float


def _archive_indexes() -> list[str]:
    """The archive's own indexes (built while it is empty): key, idempotency key, list orders."""
    found = [
        f'ALTER TABLE "{ARCHIVE}" ADD CONSTRAINT "{ARCHIVE}_pkey" PRIMARY KEY (id)',
        f'ALTER TABLE "{ARCHIVE}" ADD CONSTRAINT "{ARCHIVE}_source_external_ref_key" '
        "UNIQUE (source, external_ref)",
        f'CREATE INDEX IF NOT EXISTS "mesdb_{ARCHIVE}_status_idx" ON "{ARCHIVE}" '
        "(status, created_at DESC, id DESC)",
    ]
    for spec in INDEXES:
        if spec.table == ORDERS and "WHERE status" not in spec.columns:
            found.append(
                spec.create_sql(
                    concurrently=False,
                    table=ARCHIVE,
                    name=spec.name.replace("mesdb_orders_", f"mesdb_{ARCHIVE}_"),
                )
            )
    return found


def _referencing_keys(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of every foreign key pointing at ``orders``."""
    rows = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = 'public.orders'::regclass ORDER BY 1, 2"
    ).fetchall()
    return [(t, c, d) for t, c, d in rows]


def _recorded_keys(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    row = conn.execute("SELECT detail FROM mesdb.applied WHERE name = %s", (KEYS,)).fetchone()
    return [(t, c, d) for t, c, d in row[0]["foreign_keys"]] if row else []


def _has_constraint(conn: psycopg.Connection, table: str, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s", (table, name)
    ).fetchone()
    return row is not None


def prepare(conn: psycopg.Connection) -> None:
    """Create the archive and swap the constraints (idempotent; each step retried on lock waits)."""
    require_legacy_tables(conn)
    journal.ensure(conn)
    if journal.is_applied(conn, SPLIT):
        conn.execute(_FUNCTIONS)  # the current trigger functions (CREATE OR REPLACE, no table lock)
        return
    # the keys' definitions are recorded before the first is dropped: an interrupted prepare, run
    # again, still knows every key unsplit has to restore (the first record wins)
    journal.record(
        conn, KEYS, "split", "-- restored by mesdb unsplit", {"foreign_keys": _referencing_keys(conn)}
    )
    keys = _recorded_keys(conn)

    def create_archive() -> None:
        with conn.transaction():
            if not exists(conn, ARCHIVE):
                conn.execute(
                    f'CREATE TABLE "{ARCHIVE}" (LIKE "{ORDERS}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                    f"INCLUDING STORAGE INCLUDING STATISTICS)"
                )
                conn.execute(
                    f'ALTER TABLE "{ARCHIVE}" ADD CONSTRAINT "{ARCHIVE}_archived_status" '
                    f"CHECK (status IN ({TERMINAL_SQL}))"
                )
                for statement in _archive_indexes():
                    conn.execute(statement)
            conn.execute(_FUNCTIONS)
            if not conn.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass", (ARCHIVE,)
            ).fetchone():
                conn.execute(f'ALTER TABLE "{ARCHIVE}" INHERIT "{ORDERS}"')
            conn.execute(f'DROP TRIGGER IF EXISTS {_GUARD} ON "{ORDERS}"')
            conn.execute(  # WHEN: no PL/pgSQL call at all for orders without a reference
                f'CREATE TRIGGER {_GUARD} BEFORE INSERT ON "{ORDERS}" FOR EACH ROW '
                "WHEN (NEW.external_ref IS NOT NULL) EXECUTE FUNCTION mesdb.skip_archived_duplicate()"
            )

    retrying("create the archive", create_archive)
    for table, name, _ in keys:
        if not _has_constraint(conn, table, name):
            continue  # swapped by an earlier, interrupted run

        def swap(table: str = table, name: str = name) -> None:
            with conn.transaction():  # the trigger replaces the key in the same commit: never unchecked
                conn.execute(
                    sql.SQL(
                        "CREATE CONSTRAINT TRIGGER {} AFTER INSERT OR UPDATE OF order_id ON {} "
                        "FOR EACH ROW EXECUTE FUNCTION mesdb.order_must_exist()"
                    ).format(sql.Identifier(_FK_TRIGGER), sql.Identifier(table))
                )
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )

        retrying(f"replace foreign key {name}", swap)
    journal.record(conn, SPLIT, "split", "-- mesdb unsplit", {})


def move_batch(
    conn: psycopg.Connection, direction: Direction, *, batch: int, after_id: int, age: timedelta = DEFAULT_AGE
) -> tuple[int, int]:
    """Move one verified batch; returns ``(rows moved, last id looked at)`` (0 rows: nothing left)."""
    source, target = (
        (f'ONLY "{ORDERS}"', f'"{ARCHIVE}"')
        if direction == "archive"
        else (f'"{ARCHIVE}"', f'ONLY "{ORDERS}"')
    )
    eligible = (
        "status = ANY(%(terminal)s) AND status_changed_at < now() - %(age)s"
        if direction == "archive"
        else "true"
    )
    args = {"terminal": list(TERMINAL), "age": age, "after": after_id, "batch": batch}
    with conn.transaction():
        conn.execute("SET LOCAL mesdb.moving = 'on'")
        picked = conn.execute(
            f"SELECT id FROM {source} WHERE id > %(after)s AND {eligible} "  # noqa: S608
            "ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED",
            args,
        ).fetchall()
        if not picked:
            return 0, after_id
        ids = [r[0] for r in picked]
        digest = "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t.id)) FROM {} t WHERE t.id = ANY(%s)"
        before = conn.execute(digest.format(source), (ids,)).fetchone()
        conn.execute(
            f"INSERT INTO {target.replace('ONLY ', '')} SELECT * FROM {source} WHERE id = ANY(%s)",  # noqa: S608
            (ids,),
        )
        copied = conn.execute(digest.format(target), (ids,)).fetchone()
        if before != copied or before is None or before[0] != len(ids):
            raise KitError(
                f"{direction}: copy of ids {ids[0]}..{ids[-1]} differs ({before} vs {copied}); rolled back"
            )
        conn.execute(f"DELETE FROM {source} WHERE id = ANY(%s)", (ids,))  # noqa: S608
        conn.execute(
            "INSERT INTO mesdb.moves (direction, rows_moved, checksum) VALUES (%s, %s, %s)",
            (direction, len(ids), before[1]),
        )
    return len(ids), ids[-1]


def move_all(
    conn: psycopg.Connection,
    direction: Direction,
    *,
    batch: int = 5000,
    age: timedelta = DEFAULT_AGE,
    pause_s: float = 0.0,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MoveReport:
    """Move batches until none is left (or ``max_batches``); ``pause_s`` between them spares the MES.

    One sweep walks the ids upwards; rows an MES request had locked are skipped (``SKIP LOCKED``),
    so further sweeps from the start pick them up while a sweep still finds any (at most
    ``SWEEPS``; what is left then, the next archiver pass takes).
    """
    started, rows, batches = time.monotonic(), 0, 0
    for _ in range(SWEEPS):
        last, swept = 0, 0
        while max_batches is None or batches < max_batches:
            moved, last = move_batch(conn, direction, batch=batch, after_id=last, age=age)
            if not moved:
                break
            rows, batches, swept = rows + moved, batches + 1, swept + moved
            if progress:
                progress(rows, last)
            if pause_s:
                time.sleep(pause_s)
        if not swept or (max_batches is not None and batches >= max_batches):
            break
    return MoveReport(direction, rows, batches, time.monotonic() - started)


def split(
    conn: psycopg.Connection,
    *,
    age: timedelta = DEFAULT_AGE,
    batch: int = 5000,
    pause_s: float = 0.0,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MoveReport:
    """Prepare (once), then move every archivable order; statistics refreshed at the end."""
    prepare(conn)
    report = move_all(
        conn, "archive", batch=batch, age=age, pause_s=pause_s, max_batches=max_batches, progress=progress
    )
    if report.rows:
        conn.execute(f'VACUUM (ANALYZE) "{ARCHIVE}"')  # visibility map: index-only counts on the archive
        conn.execute(f'VACUUM (ANALYZE) "{ORDERS}"')
    return report


def archive(conn: psycopg.Connection, *, age: timedelta = DEFAULT_AGE, batch: int = 5000) -> MoveReport:
    """One archiver pass: move the orders that closed (or were cancelled) more than ``age`` ago."""
    if not journal.is_applied(conn, SPLIT):
        raise KitError("no hot/cold split here yet: run `mesdb split` first")
    report = move_all(conn, "archive", batch=batch, age=age)
    if report.rows:
        conn.execute(f'ANALYZE "{ORDERS}"')
    return report


def unsplit(conn: psycopg.Connection, *, batch: int = 5000, pause_s: float = 0.0) -> MoveReport:
    """The rollback: every archived order back into ``orders``, the foreign keys and tables as before."""
    if not exists(conn, ARCHIVE):  # never created (a prepare interrupted before it), or gone
        if exists(conn, "mesdb.applied"):
            journal.forget(conn, SPLIT)
            journal.forget(conn, KEYS)
        return MoveReport("restore", 0, 0, 0.0)
    report = move_all(conn, "restore", batch=batch, pause_s=pause_s)
    for table, name, definition in _recorded_keys(conn):

        def restore(table: str = table, name: str = name, definition: str = definition) -> None:
            with conn.transaction():
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                        sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
                    )
                )
                conn.execute(
                    sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                        sql.Identifier(_FK_TRIGGER), sql.Identifier(table)
                    )
                )

        if not _has_constraint(conn, table, name):  # else: restored by an earlier, interrupted run
            retrying(f"restore foreign key {name}", restore)
        # checks the existing rows without blocking writes (SHARE UPDATE EXCLUSIVE)
        retrying(
            f"validate {name}",
            lambda t=table, n=name: conn.execute(  # type: ignore[misc]
                sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.Identifier(t), sql.Identifier(n))
            ),
        )

    def drop_archive() -> None:
        with conn.transaction():
            conn.execute(f'DROP TRIGGER IF EXISTS {_GUARD} ON "{ORDERS}"')
            conn.execute(f'DROP TABLE "{ARCHIVE}"')
            conn.execute("DROP FUNCTION IF EXISTS mesdb.order_must_exist(), mesdb.skip_archived_duplicate()")

    retrying("drop the archive", drop_archive)
    journal.forget(conn, SPLIT)
    journal.forget(conn, KEYS)
    conn.execute(f'ANALYZE "{ORDERS}"')
    return report
