"""The dev MES database as the DBA's kit leaves it (``MESDB=1``, the default of ``make run``).

Before the MES instances connect: the legacy tables (the MES's own ``schema.sql``), then
``mesdb apply`` (indexes built concurrently, ``plan_cache_mode = force_custom_plan`` for the
database: sessions opened afterwards plan the legacy's generic statements per value) and the
hot/cold split's preparation. ``make run`` then starts the archiver (``mesdb archive --every``),
which moves orders closed or cancelled more than 30 days ago — the seeded ones included — to
``orders_archive`` in verified batches. ``MESDB=0`` gives the database back as the legacy makes it:
a persisted dev database a run with the kit left behind is reverted first (:func:`restore_legacy`).
"""

from __future__ import annotations

import os

import psycopg

from legacy_sim.mes.schema import SCHEMA_LOCK_KEY, SCHEMA_SQL
from mesdb import journal, split, tuning
from mesdb.db import connect


def archive_every_s() -> str:
    """Seconds between two archiver passes in ``make run`` (``MESDB_ARCHIVE_EVERY``, default 60)."""
    return os.environ.get("MESDB_ARCHIVE_EVERY", "60")


def enabled() -> bool:
    """``MESDB`` unset or ``1``: the kit is applied; ``0``: the legacy schema as it is."""
    return os.environ.get("MESDB", "1") != "0"


def prepare(dsn: str) -> None:
    """Legacy tables, ``mesdb apply`` (unmeasured) and the split's preparation; idempotent."""
    # under the MES's own schema lock, as every MES instance applies it
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        conn.execute(SCHEMA_SQL)
    with connect(dsn) as conn:  # the kit's own session: its lock_timeout (mesdb.limits)
        tuning.apply(conn, measured=False)
        split.prepare(conn)


def restore_legacy(dsn: str) -> list[str]:
    """``MESDB=0``: undo what an earlier run with the kit left in the (persisted) database —
    ``mesdb revert``: the archived orders back into ``orders``, the foreign keys, indexes and
    ``plan_cache_mode`` as they were; returns what was removed ([] on a database the kit never
    touched). The kit's journal schema ``mesdb`` stays, empty but for its move history."""
    with connect(dsn) as conn:
        if not journal.applied(conn):
            return []
        return [change.name for change in tuning.revert(conn)]
