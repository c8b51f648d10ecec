"""``make run``'s database: ``MESDB=1`` applies the kit; ``MESDB=0`` on a database an earlier run
migrated gives it back as the legacy makes it (the dev database persists between runs)."""

from __future__ import annotations

from devstack import mes_database
from tests.integration.mesdb.conftest import mesdb_json, query
from tests.integration.mesdb.test_mesdb_split import ROWS

LEGACY_STATE = {
    "foreign keys": "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated",
    "kit indexes": "SELECT count(*) FROM pg_class WHERE relname LIKE 'mesdb%' AND relkind = 'i'",
    "kit triggers": "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'mesdb%'",
    "archive": "SELECT count(*) FROM pg_class WHERE relname = 'orders_archive'",
    "settings": "SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c "
    "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
}


def _state(dsn: str) -> dict[str, int]:
    return {what: int(query(dsn, sql)[0][0]) for what, sql in LEGACY_STATE.items()}


def test_mesdb_0_reverts_what_a_run_with_the_kit_left_in_the_database(seeded_dsn: str) -> None:
    legacy, rows = _state(seeded_dsn), dict(query(seeded_dsn, ROWS))
    assert legacy == {"foreign keys": 2, "kit indexes": 0, "kit triggers": 0, "archive": 0, "settings": 0}
    mes_database.prepare(seeded_dsn)  # a `make run` (MESDB=1) …
    assert mesdb_json(seeded_dsn, "archive")["rows"] > 0  # … whose archiver ran
    assert _state(seeded_dsn) != legacy
    reverted = mes_database.restore_legacy(seeded_dsn)  # the next `MESDB=0 make run`
    assert {"split:orders_archive", "setting:plan_cache_mode", "mesdb_orders_active_idx"} <= set(reverted)
    assert _state(seeded_dsn) == legacy
    assert dict(query(seeded_dsn, ROWS)) == rows
    assert mes_database.restore_legacy(seeded_dsn) == []  # nothing left: the next run changes nothing


def test_mesdb_0_on_a_database_the_kit_never_touched_changes_nothing(pg_dsn: str) -> None:
    assert mes_database.restore_legacy(pg_dsn) == []
    assert query(pg_dsn, "SELECT to_regnamespace('mesdb')") == [(None,)]
