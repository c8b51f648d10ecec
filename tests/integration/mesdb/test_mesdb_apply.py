"""``mesdb apply`` / ``mesdb revert``: concurrent indexes and the plan setting, recorded, measured,
idempotent, and removed exactly."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import psycopg

from mesdb.catalogue import INDEXES, SETTING_SERVES
from tests.integration.mesdb.conftest import execute, mesdb, mesdb_json, query
from tests.support.waiting import eventually

KIT_INDEXES = {
    "mesdb_orders_active_idx",
    "mesdb_orders_created_idx",
    "mesdb_orders_partner_idx",
    "mesdb_history_order_idx",
    "mesdb_pricing_order_idx",
}


def _indexes(dsn: str) -> dict[str, bool]:
    return dict(
        query(
            dsn,
            "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname LIKE 'mesdb_%'",
        )
    )


def _database_plan_cache_mode(dsn: str) -> list[str]:
    return [
        r[0]
        for r in query(
            dsn,
            "SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = 0 "
            "AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    ]


def _custom_plan_of_status_list(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:  # a new session: it gets the database's settings
        conn.execute(
            "PREPARE l(text, text, bigint, bigint) AS SELECT * FROM orders WHERE ($1::text IS NULL OR "
            "status = $1) AND ($2::text IS NULL OR partner_id = $2) ORDER BY created_at DESC, id DESC "
            "LIMIT $3 OFFSET $4"
        )
        for _ in range(6):  # past the five custom plans after which `auto` may switch to a generic one
            conn.execute("EXECUTE l('SHIPPED', NULL, 50, 0)")
        rows = conn.execute("EXPLAIN EXECUTE l('SHIPPED', NULL, 50, 0)").fetchall()
    return "\n".join(r[0] for r in rows)


def test_apply_builds_the_indexes_sets_custom_plans_and_measures_each(seeded_dsn: str) -> None:
    changes = mesdb_json(seeded_dsn, "apply")
    assert {c["name"]: c["outcome"] for c in changes} == {
        **dict.fromkeys(KIT_INDEXES, "created"),
        "plan_cache_mode = force_custom_plan": "set",
    }
    assert _indexes(seeded_dsn) == dict.fromkeys(KIT_INDEXES, True)
    assert _database_plan_cache_mode(seeded_dsn) == ["plan_cache_mode=force_custom_plan"]
    assert "mesdb_orders_active_idx" in _custom_plan_of_status_list(seeded_dsn)
    effects = {c["name"]: c["effects"] for c in changes}
    # each change measured alone, on the calls it targets (catalogue.serves), and only those
    for spec in INDEXES:
        assert all(e["label"].startswith(spec.serves) for e in effects[spec.name]), spec.name
        assert bool(effects[spec.name]) == bool(spec.serves), spec.name
    active = next(e for e in effects["mesdb_orders_active_idx"] if e["label"].startswith("list status="))
    assert active["compared"] == "custom plan, without → with this index"
    assert "mesdb_orders_active_idx" in active["after"]["shape"]
    examined = [sum(s["rows_examined"] for s in active[side]["scans"]) for side in ("before", "after")]
    assert examined[0] > 100 * examined[1]
    setting = effects["plan_cache_mode = force_custom_plan"]
    assert {e["label"].split("=")[0] + "=" for e in setting} <= set(SETTING_SERVES)
    assert all(e["compared"] == "generic → custom plan" for e in setting)


def test_apply_prints_each_change_with_its_own_effect(seeded_dsn: str) -> None:
    done = mesdb(seeded_dsn, "apply")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "created  mesdb_orders_active_idx" in line)
    assert "(custom plan, without → with this index); rows examined" in lines[at + 1]
    assert any("(generic → custom plan)" in line for line in lines)


def test_apply_twice_changes_nothing_the_second_time(seeded_dsn: str) -> None:
    mesdb_json(seeded_dsn, "apply", "--no-measure")
    again = mesdb_json(seeded_dsn, "apply", "--no-measure")
    assert {c["outcome"] for c in again} == {"present", "unchanged"}


async def _kit_build_cancelled_midway(dsn: str) -> None:
    """``mesdb apply`` whose first concurrent build is cancelled midway (its session terminated while
    the build waits for a writer's transaction): the index is left INVALID, apply fails."""
    writer = psycopg.connect(dsn)  # an MES transaction with a write still open: the build waits for it
    writer.execute("UPDATE orders SET customer = customer WHERE id = (SELECT min(id) FROM orders)")
    try:
        apply = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mesdb",
            "--dsn",
            dsn,
            "apply",
            "--no-measure",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

        async def building() -> bool:
            return bool(query(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE phase LIKE 'waiting%'"))

        await eventually(building, timeout=60, what="the kit's concurrent build waits for the writer")
        execute(dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_progress_create_index")
        _out, err = await asyncio.wait_for(apply.communicate(), timeout=60)
    finally:
        writer.rollback()
        writer.close()
    assert apply.returncode == 1, err.decode()
    assert _indexes(dsn) == {"mesdb_orders_active_idx": False}


async def test_revert_drops_the_invalid_index_a_cancelled_build_left(seeded_dsn: str) -> None:
    await _kit_build_cancelled_midway(seeded_dsn)
    reverted = mesdb_json(seeded_dsn, "revert")
    assert "mesdb_orders_active_idx" in {c["name"] for c in reverted}
    assert _indexes(seeded_dsn) == {}
    assert query(seeded_dsn, "SELECT count(*) FROM mesdb.applied") == [(0,)]


async def test_apply_rebuilds_the_invalid_index_its_own_cancelled_build_left(seeded_dsn: str) -> None:
    await _kit_build_cancelled_midway(seeded_dsn)
    changes = mesdb_json(seeded_dsn, "apply", "--no-measure")
    assert {c["name"]: c["outcome"] for c in changes}["mesdb_orders_active_idx"] == "rebuilt"
    assert _indexes(seeded_dsn) == dict.fromkeys(KIT_INDEXES, True)


def test_apply_leaves_an_invalid_index_it_did_not_build_and_says_so(seeded_dsn: str) -> None:
    # someone else's failed unique build under the kit's name: not the kit's to drop
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        execute(seeded_dsn, "CREATE UNIQUE INDEX CONCURRENTLY mesdb_orders_created_idx ON orders (status)")
    changes = {c["name"]: c for c in mesdb_json(seeded_dsn, "apply", "--no-measure")}
    assert changes["mesdb_orders_created_idx"]["outcome"] == "foreign-invalid"
    assert "DROP INDEX CONCURRENTLY" in changes["mesdb_orders_created_idx"]["why"]
    assert _indexes(seeded_dsn)["mesdb_orders_created_idx"] is False
    mesdb_json(seeded_dsn, "revert")
    assert _indexes(seeded_dsn) == {"mesdb_orders_created_idx": False}  # still there: not the kit's


def test_revert_removes_exactly_what_apply_added(seeded_dsn: str) -> None:
    # the DBA's own index, by chance under the kit's name: apply leaves it, revert keeps it
    execute(seeded_dsn, "CREATE INDEX mesdb_history_order_idx ON order_status_history (order_id)")
    execute(seeded_dsn, "ALTER DATABASE " + seeded_dsn.rsplit("/", 1)[1] + " SET work_mem = '8MB'")
    changes = mesdb_json(seeded_dsn, "apply", "--no-measure")
    assert {c["name"]: c["outcome"] for c in changes}["mesdb_history_order_idx"] == "present"
    reverted = mesdb_json(seeded_dsn, "revert")
    assert {c["name"] for c in reverted} == (KIT_INDEXES - {"mesdb_history_order_idx"}) | {
        "setting:plan_cache_mode"
    }
    assert _indexes(seeded_dsn) == {"mesdb_history_order_idx": True}
    assert _database_plan_cache_mode(seeded_dsn) == ["work_mem=8MB"]
    assert query(seeded_dsn, "SELECT count(*) FROM mesdb.applied") == [(0,)]


def test_apply_for_one_role_sets_plan_cache_mode_for_that_role_only(seeded_dsn: str) -> None:
    execute(seeded_dsn, "DROP ROLE IF EXISTS legacy_mes")
    execute(seeded_dsn, "CREATE ROLE legacy_mes LOGIN")
    try:
        mesdb_json(seeded_dsn, "apply", "--no-measure", "--role", "legacy_mes")
        assert _database_plan_cache_mode(seeded_dsn) == []
        as_role = seeded_dsn.replace("postgres@", "legacy_mes@")
        assert query(as_role, "SHOW plan_cache_mode") == [("force_custom_plan",)]
        assert query(seeded_dsn, "SHOW plan_cache_mode") == [("auto",)]
        mesdb_json(seeded_dsn, "revert")
        assert query(as_role, "SHOW plan_cache_mode") == [("auto",)]
    finally:
        execute(seeded_dsn, "DROP ROLE legacy_mes")


def _plan_cache_mode_settings(dsn: str) -> dict[str, str]:
    """plan_cache_mode per target in this database: '' for the database, else the role's name."""
    return dict(
        query(
            dsn,
            "SELECT coalesce(r.rolname, ''), substr(c, strpos(c, '=') + 1) FROM pg_db_role_setting s "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c "
            "WHERE c LIKE 'plan_cache_mode=%%' "
            "AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    )


def test_revert_restores_the_database_and_the_role_setting_each_to_its_previous_value(
    seeded_dsn: str,
) -> None:
    database = seeded_dsn.rsplit("/", 1)[1]
    role = f"legacy_mes_{database}"
    execute(seeded_dsn, f'CREATE ROLE "{role}" LOGIN')
    try:  # the role had a value of its own before; the database had none
        execute(
            seeded_dsn,
            f'ALTER ROLE "{role}" IN DATABASE "{database}" SET plan_cache_mode = force_generic_plan',
        )
        mesdb_json(seeded_dsn, "apply", "--no-measure")
        mesdb_json(seeded_dsn, "apply", "--no-measure", "--role", role)
        assert _plan_cache_mode_settings(seeded_dsn) == {"": "force_custom_plan", role: "force_custom_plan"}
        reverted = {c["name"] for c in mesdb_json(seeded_dsn, "revert")}
        assert {"setting:plan_cache_mode", f"setting:plan_cache_mode:role={role}"} <= reverted
        assert _plan_cache_mode_settings(seeded_dsn) == {role: "force_generic_plan"}  # database: not set
    finally:
        execute(seeded_dsn, f'DROP OWNED BY "{role}"')
        execute(seeded_dsn, f'DROP ROLE "{role}"')
