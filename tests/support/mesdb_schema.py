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
