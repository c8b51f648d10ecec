"""``MES_TEST_SCHEMA=mesdb``: every fresh test database gets the legacy schema already migrated by
the database kit (indexes, custom plans, the hot/cold split), so the legacy MES's own tests run on
the schema production would have after ``mesdb apply`` + ``mesdb split``."""

from __future__ import annotations

import os

from devstack import mes_database

ENV = "MES_TEST_SCHEMA"


def wanted() -> bool:
    """True when the tests run on the migrated schema."""
    return os.environ.get(ENV) == "mesdb"


def migrate(dsn: str) -> None:
    """Legacy tables, then the kit's apply and split (on an empty database: nothing to move yet)."""
    mes_database.prepare(dsn)


def archive_due(dsn: str) -> int:
    """On the migrated schema, one archiver pass (``mesdb archive``): the orders closed or cancelled
    more than 30 days ago move to ``orders_archive``; returns how many (0 on the legacy schema)."""
    if not wanted():
        return 0
    from mesdb import split
    from mesdb.db import connect

    with connect(dsn) as conn:
        return split.archive(conn).rows
