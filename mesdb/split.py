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

Rows move in verified batches (:mod:`mesdb.mover`); an interrupted run resumes where it stopped
(the rows still in ``orders`` are simply the ones not yet moved), and so does an interrupted
preparation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import psycopg
from psycopg import sql

from mesdb import guards, journal, ownership
from mesdb.catalogue import INDEXES
from mesdb.db import exists, require_legacy_tables
from mesdb.ddl import retrying
from mesdb.errors import KitError
from mesdb.legacy import ARCHIVE, ORDERS, TERMINAL_SQL
from mesdb.mover import DEFAULT_AGE, MOVE_LOCK, MoveReport, move_all

SPLIT = f"split:{ARCHIVE}"
KEYS = "split:foreign-keys"
#: rounds of moving back before unsplit gives up on rows other transactions keep locked
RESTORE_ATTEMPTS = 8


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


def _own_archive(conn: psycopg.Connection) -> None:
    """The archive and the trigger functions with the owner of ``orders``, the archive with its grants."""
    ownership.own_functions(conn, guards.FUNCTION_NAMES, ORDERS)
    if exists(conn, ARCHIVE) and not ownership.matches(conn, ARCHIVE, ORDERS):

        def align() -> None:
            with conn.transaction():
                ownership.align(conn, ARCHIVE, ORDERS)

        retrying(conn, "give the archive the owner of orders", align)


def prepare(conn: psycopg.Connection) -> None:
    """Create the archive and swap the constraints (idempotent; each step retried on lock waits)."""
    require_legacy_tables(conn)
    journal.ensure(conn)
    if journal.is_applied(conn, SPLIT):
        conn.execute(guards.FUNCTIONS)  # the current trigger functions (CREATE OR REPLACE, no table lock)
        _own_archive(conn)  # an archive created by an earlier kit, owned by the kit's role
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
            ownership.align(conn, ARCHIVE, ORDERS)
            conn.execute(guards.FUNCTIONS)
            ownership.own_functions(conn, guards.FUNCTION_NAMES, ORDERS)
            if not conn.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass", (ARCHIVE,)
            ).fetchone():
                conn.execute(f'ALTER TABLE "{ARCHIVE}" INHERIT "{ORDERS}"')
            conn.execute(f'DROP TRIGGER IF EXISTS {guards.DUPLICATE_GUARD} ON "{ORDERS}"')
            conn.execute(  # WHEN: no PL/pgSQL call at all for orders without a reference
                f'CREATE TRIGGER {guards.DUPLICATE_GUARD} BEFORE INSERT ON "{ORDERS}" FOR EACH ROW '
                "WHEN (NEW.external_ref IS NOT NULL) EXECUTE FUNCTION mesdb.skip_archived_duplicate()"
            )

    retrying(conn, "create the archive", create_archive)
    for table, name, _ in keys:
        if not _has_constraint(conn, table, name):
            continue  # swapped by an earlier, interrupted run

        def swap(table: str = table, name: str = name) -> None:
            with conn.transaction():  # the trigger replaces the key in the same commit: never unchecked
                conn.execute(
                    sql.SQL(
                        "CREATE CONSTRAINT TRIGGER {} AFTER INSERT OR UPDATE OF order_id ON {} "
                        "FOR EACH ROW EXECUTE FUNCTION mesdb.order_must_exist()"
                    ).format(sql.Identifier(guards.FK_TRIGGER), sql.Identifier(table))
                )
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )

        retrying(conn, f"replace foreign key {name}", swap)
    journal.record(conn, SPLIT, "split", "-- mesdb unsplit", {})


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
    """The rollback: every archived order back into ``orders``, the foreign keys and tables as before.

    Runs holding :data:`mesdb.mover.MOVE_LOCK` exclusively (an archiver's batches then stop), and
    drops the archive only once it is empty: an order is never lost, whatever runs alongside.
    """
    retrying(
        conn,
        "wait for the archiver's batch in flight",
        lambda: conn.execute("SELECT pg_advisory_lock(%s)", (MOVE_LOCK,)),
    )
    try:
        return _unsplit(conn, batch=batch, pause_s=pause_s)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MOVE_LOCK,))


def _archived(conn: psycopg.Connection) -> int:
    row = conn.execute(f'SELECT count(*) FROM "{ARCHIVE}"').fetchone()  # noqa: S608 (a constant)
    return int(row[0]) if row else 0


def _restore_all(conn: psycopg.Connection, *, batch: int, pause_s: float) -> MoveReport:
    """Move batches back until the archive is empty; rows an MES transaction keeps locked are
    retried for a while, then the rollback stops with the archive (and the split) intact."""
    rows, batches, seconds = 0, 0, 0.0
    for attempt in range(RESTORE_ATTEMPTS):
        if attempt:
            time.sleep(min(0.1 * 2**attempt, 2.0))
        report = move_all(conn, "restore", batch=batch, pause_s=pause_s)
        rows, batches, seconds = rows + report.rows, batches + report.batches, seconds + report.seconds
        left = _archived(conn)
        if not left:
            return MoveReport("restore", rows, batches, seconds)
    raise KitError(
        f"unsplit: {left} order(s) still in {ARCHIVE} after {RESTORE_ATTEMPTS} attempts (locked by "
        f"long transactions?); nothing dropped, the split still works — run mesdb unsplit again"
    )


def _unsplit(conn: psycopg.Connection, *, batch: int, pause_s: float) -> MoveReport:
    if not exists(conn, ARCHIVE):  # never created (a prepare interrupted before it), or gone
        if exists(conn, "mesdb.applied"):
            journal.forget(conn, SPLIT)
            journal.forget(conn, KEYS)
        return MoveReport("restore", 0, 0, 0.0)
    report = _restore_all(conn, batch=batch, pause_s=pause_s)
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
                        sql.Identifier(guards.FK_TRIGGER), sql.Identifier(table)
                    )
                )

        if not _has_constraint(conn, table, name):  # else: restored by an earlier, interrupted run
            retrying(conn, f"restore foreign key {name}", restore)
        # checks the existing rows without blocking writes (SHARE UPDATE EXCLUSIVE)
        retrying(
            conn,
            f"validate {name}",
            lambda t=table, n=name: conn.execute(  # type: ignore[misc]
                sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.Identifier(t), sql.Identifier(n))
            ),
        )

    def drop_archive() -> None:
        with conn.transaction():
            conn.execute(f'DROP TRIGGER IF EXISTS {guards.DUPLICATE_GUARD} ON "{ORDERS}"')
            conn.execute(f'LOCK TABLE "{ARCHIVE}" IN ACCESS EXCLUSIVE MODE')
            if _archived(conn):  # never: the move lock keeps archivers out; checked all the same
                raise KitError(f"unsplit: {ARCHIVE} is not empty; not dropped")
            conn.execute(f'DROP TABLE "{ARCHIVE}"')
            conn.execute("DROP FUNCTION IF EXISTS mesdb.order_must_exist(), mesdb.skip_archived_duplicate()")

    retrying(conn, "drop the archive", drop_archive)
    journal.forget(conn, SPLIT)
    journal.forget(conn, KEYS)
    conn.execute(f'ANALYZE "{ORDERS}"')
    return report
