"""The MES runs as its own role, the kit as a superuser: after the split the legacy's writes
still work with the MES role's privileges (the archive has the owner and grants of ``orders``)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.integration.mesdb.conftest import close_long_ago, execute, mesdb_json, query
from tests.integration.mesdb.test_mesdb_analyse import LIST_TEXT, _operator_lists
from tests.integration.mesdb.test_mesdb_split import ROWS
from tests.integration.mesdb.test_mesdb_split_races import LEGACY_INSERT, _first_archivable_crm_order


def _own_the_tables(dsn: str, role: str) -> None:
    """Every table of schema public to ``role``."""
    for (table,) in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
        execute(
            dsn,
            sql.SQL("ALTER TABLE {} OWNER TO {}")
            .format(sql.Identifier(table), sql.Identifier(role))
            .as_string(),
        )


@pytest.fixture
def mes_role_dsn(seeded_dsn: str) -> Iterator[str]:
    """The seeded legacy tables owned by a non-superuser login role; its DSN. A second role, the
    writer, may only read and insert orders and insert history (no UPDATE, so no row locks)."""
    database = seeded_dsn.rsplit("/", 1)[1]
    role, writer = f"mes_{database}", f"mes_writer_{database}"
    execute(seeded_dsn, sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(sql.Identifier(role)).as_string())
    execute(
        seeded_dsn, sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(sql.Identifier(writer)).as_string()
    )
    _own_the_tables(seeded_dsn, role)
    for grant in (
        "GRANT SELECT, INSERT ON orders TO {}",
        "GRANT INSERT ON order_status_history TO {}",
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}",
    ):
        execute(seeded_dsn, sql.SQL(grant).format(sql.Identifier(writer)).as_string())
    yield seeded_dsn.replace("postgres@", f"{role}@")
    for name in (role, writer):  # the tables back to postgres, the grants dropped, then the role
        execute(
            seeded_dsn, sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(name)).as_string()
        )
        execute(seeded_dsn, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)).as_string())
        execute(seeded_dsn, sql.SQL("DROP ROLE {}").format(sql.Identifier(name)).as_string())


def test_the_mes_role_writes_orders_after_a_split_run_by_a_superuser(
    seeded_dsn: str, mes_role_dsn: str
) -> None:
    mesdb_json(seeded_dsn, "split", "--prepare-only")  # the kit, as postgres
    order_id, archived_ref = _first_archivable_crm_order(seeded_dsn)
    mesdb_json(seeded_dsn, "archive")
    assert query(seeded_dsn, "SELECT count(*) FROM orders_archive WHERE id = %s", order_id) == [(1,)]
    role = mes_role_dsn.split("//", 1)[1].split("@", 1)[0]

    with psycopg.connect(mes_role_dsn, autocommit=True) as mes:  # the legacy, as its own role
        assert mes.execute(
            "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user"
        ).fetchone() == (
            role,
            False,
        )
        assert mes.execute(LEGACY_INSERT, (archived_ref,)).fetchall() == []  # archived: DO NOTHING
        (new_id,) = mes.execute(LEGACY_INSERT, ("roles-new-ref",)).fetchone() or (None,)
        assert new_id is not None
        mes.execute(
            "INSERT INTO order_status_history (order_id, new_status) VALUES (%s, 'CLOSED')", (order_id,)
        )
        assert mes.execute(
            "SELECT count(*) FROM orders WHERE id IN (%s, %s)", (order_id, new_id)
        ).fetchone() == (2,)

    assert query(
        seeded_dsn, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'orders_archive'::regclass"
    ) == [(role,)]
    writer = f"mes_writer_{seeded_dsn.rsplit('/', 1)[1]}"
    assert query(seeded_dsn, "SELECT has_table_privilege(%s, 'orders_archive', 'SELECT')", writer) == [
        (True,)
    ]


def test_a_role_without_update_rights_writes_as_before_the_split(seeded_dsn: str, mes_role_dsn: str) -> None:
    """The triggers check and lock ``orders`` as its owner, like a foreign key: the writer needs no
    UPDATE on ``orders`` (which ``FOR KEY SHARE`` would need with its own rights)."""
    mesdb_json(seeded_dsn, "split", "--prepare-only")
    order_id, archived_ref = _first_archivable_crm_order(seeded_dsn)
    mesdb_json(seeded_dsn, "archive")
    writer_dsn = mes_role_dsn.replace("//mes_", "//mes_writer_", 1)
    with psycopg.connect(writer_dsn, autocommit=True) as mes:
        assert mes.execute(LEGACY_INSERT, (archived_ref,)).fetchall() == []
        assert mes.execute(LEGACY_INSERT, ("writer-new-ref",)).fetchall() != []
        mes.execute(
            "INSERT INTO order_status_history (order_id, new_status) VALUES (%s, 'CLOSED')", (order_id,)
        )
    assert query(
        seeded_dsn,
        "SELECT DISTINCT pg_get_userbyid(proowner), prosecdef FROM pg_proc "
        "WHERE pronamespace = 'mesdb'::regnamespace",
    ) == [(mes_role_dsn.split("//", 1)[1].split("@", 1)[0], True)]


@pytest.fixture
def dba_dsn(seeded_dsn: str) -> Iterator[str]:
    """The DBA's role as production has it: NOSUPERUSER, owner of the MES database and its tables,
    member of pg_read_all_stats (every role's statements in pg_stat_statements); the extension
    itself created once by a superuser, as ``shared_preload_libraries`` needs one anyway."""
    database = seeded_dsn.rsplit("/", 1)[1]
    dba = f"dba_{database}"
    execute(seeded_dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    for statement in (
        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
        "GRANT pg_read_all_stats TO {}",
    ):
        execute(seeded_dsn, sql.SQL(statement).format(sql.Identifier(dba)).as_string())
    execute(
        seeded_dsn,
        sql.SQL("ALTER DATABASE {} OWNER TO {}")
        .format(sql.Identifier(database), sql.Identifier(dba))
        .as_string(),
    )
    _own_the_tables(seeded_dsn, dba)
    yield seeded_dsn.replace("postgres@", f"{dba}@")
    execute(
        seeded_dsn,
        sql.SQL("ALTER DATABASE {} OWNER TO postgres").format(sql.Identifier(database)).as_string(),
    )
    execute(seeded_dsn, sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(dba)).as_string())
    execute(seeded_dsn, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(dba)).as_string())
    execute(seeded_dsn, sql.SQL("DROP ROLE {}").format(sql.Identifier(dba)).as_string())


async def test_the_whole_kit_runs_as_a_non_superuser_owner_with_pg_read_all_stats(
    seeded_dsn: str, dba_dsn: str
) -> None:
    assert query(dba_dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [(False,)]
    before = dict(query(seeded_dsn, ROWS))
    await _operator_lists(seeded_dsn)  # the legacy's statements, run by another role (postgres here)
    report = mesdb_json(dba_dsn, "analyse")
    assert report["statements_source"] == "pg_stat_statements"  # other roles' statement texts readable
    assert any(LIST_TEXT in s["query"] for s in report["statements"])
    changes = mesdb_json(dba_dsn, "apply", "--no-measure")
    assert {c["outcome"] for c in changes} == {"created", "set"}
    moved = mesdb_json(dba_dsn, "split", "--batch", "5000")
    assert moved["rows"] > 0
    closed = int(query(seeded_dsn, "SELECT min(id) FROM ONLY orders")[0][0])
    close_long_ago(seeded_dsn, closed)
    assert mesdb_json(dba_dsn, "archive")["rows"] == 1
    reverted = {c["name"] for c in mesdb_json(dba_dsn, "revert")}
    assert {"split:orders_archive", "setting:plan_cache_mode"} <= reverted
    after = dict(query(seeded_dsn, ROWS))
    assert set(after) == set(before)
    assert {i: h for i, h in after.items() if i != closed} == {i: h for i, h in before.items() if i != closed}
    assert query(
        seeded_dsn,
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname LIKE 'mesdb_%'",
    ) == [(0,)]
    assert query(seeded_dsn, "SELECT to_regclass('orders_archive')") == [(None,)]
