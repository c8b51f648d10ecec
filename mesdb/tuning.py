"""``mesdb apply`` / ``mesdb revert``: the catalogue's indexes and plan setting, each measured.

Every change the kit makes is recorded in ``mesdb.applied`` with the SQL that undoes it; an index
or setting that was already there is left alone and not recorded, so revert never removes what the
kit did not add. Running apply twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from mesdb import journal
from mesdb.catalogue import INDEXES, PLAN_CACHE_SETTING, SETTING_SERVES, IndexSpec
from mesdb.db import require_legacy_tables
from mesdb.ddl import build_index, index_state, retrying
from mesdb.errors import KitError
from mesdb.measure import Effect, index_effects, measure, setting_effects


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What happened to one change and the calls it serves, measured before and after."""

    name: str
    outcome: str  # created | rebuilt | present | foreign-invalid | set | unchanged | removed | absent
    why: str
    #: measured alone, on the calls this change targets (mesdb.measure)
    effects: list[Effect] = field(default_factory=list)


def _setting_target(conn: psycopg.Connection, role: str | None) -> tuple[sql.Composable, int]:
    database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    if role is None:
        return sql.SQL("ALTER DATABASE {}").format(sql.Identifier(database)), 0
    row = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if row is None:
        raise KitError(f"role {role!r} does not exist")
    return sql.SQL("ALTER ROLE {} IN DATABASE {}").format(
        sql.Identifier(role), sql.Identifier(database)
    ), row[0]


def current_setting_value(conn: psycopg.Connection, name: str, role_oid: int = 0) -> str | None:
    """The per-database (or per-role-in-database) value of ``name``, ``None`` when not set."""
    row = conn.execute(
        "SELECT substr(c, strpos(c, '=') + 1) FROM pg_db_role_setting s, unnest(s.setconfig) AS c "
        "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND s.setrole = %s AND split_part(c, '=', 1) = %s",
        (role_oid, name),
    ).fetchone()
    return row[0] if row else None


def _apply_setting(conn: psycopg.Connection, role: str | None) -> str:
    name, value = PLAN_CACHE_SETTING
    target, role_oid = _setting_target(conn, role)
    previous = current_setting_value(conn, name, role_oid)
    if previous == value:
        return "unchanged"
    undo = (
        sql.SQL("{} RESET {}").format(target, sql.Identifier(name))
        if previous is None
        else sql.SQL("{} SET {} = {}").format(target, sql.Identifier(name), sql.Literal(previous))
    )
    try:
        retrying(
            conn,
            f"SET {name}",
            lambda: conn.execute(
                sql.SQL("{} SET {} = {}").format(target, sql.Identifier(name), sql.Literal(value))
            ),
        )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise KitError(f"cannot set {name}: {exc} (run as the database owner or a superuser)") from exc
    journal.record(
        conn, setting_entry(name, role), "setting", undo.as_string(conn), {"previous": previous, "role": role}
    )
    return "set"


def setting_entry(name: str, role: str | None) -> str:
    """The journal name of a setting the kit made: one per target (the database, or one role in
    it), so a database-level and a role-level change are both undone, each to its own previous value."""
    return f"setting:{name}" + (f":role={role}" if role is not None else "")


def _index_why(why: str, outcome: str) -> str:
    if outcome == "foreign-invalid":
        return (
            "an INVALID index of this name that the kit did not build is in the way: drop it "
            "(DROP INDEX CONCURRENTLY) and run apply again"
        )
    return why


def _apply_index(conn: psycopg.Connection, spec: IndexSpec, *, measured: bool) -> ChangeResult:
    """Build one index, measured alone: its targeted calls just before and just after."""
    if index_state(conn, spec.name) is None:
        # the intent first: a build that fails or is cancelled midway leaves an INVALID index,
        # which revert then drops and the next apply rebuilds
        journal.record(
            conn, spec.name, "index", spec.drop_sql, {"table": spec.table, "columns": spec.columns}
        )
    ours = journal.is_applied(conn, spec.name)
    will_build = measured and spec.serves and index_state(conn, spec.name) != "valid"
    before = measure(conn, spec.serves) if will_build else []
    outcome = build_index(conn, spec, ours=ours)
    after = measure(conn, spec.serves) if before and outcome in ("created", "rebuilt") else []
    return ChangeResult(spec.name, outcome, _index_why(spec.why, outcome), index_effects(before, after))


def apply(conn: psycopg.Connection, *, role: str | None = None, measured: bool = True) -> list[ChangeResult]:
    """Add every catalogue change that is missing, one at a time, each measured alone."""
    require_legacy_tables(conn)
    journal.ensure(conn)
    results = [_apply_index(conn, spec, measured=measured) for spec in INDEXES]
    outcome = _apply_setting(conn, role)
    results.append(
        ChangeResult(
            f"{PLAN_CACHE_SETTING[0]} = {PLAN_CACHE_SETTING[1]}" + (f" (role {role})" if role else ""),
            outcome,
            "the legacy's generic statements get plans for their actual values "
            "(new sessions: recycle the MES's pools)",
            setting_effects(measure(conn, SETTING_SERVES)) if measured and outcome == "set" else [],
        )
    )
    return results


def revert(conn: psycopg.Connection) -> list[ChangeResult]:
    """Undo what apply recorded, newest first (the hot/cold split first, if there is one)."""
    from mesdb import split

    results: list[ChangeResult] = []
    if journal.applied(conn, "split"):  # done, or a preparation that was interrupted
        split.unsplit(conn)
        results.append(ChangeResult(split.SPLIT, "removed", "archived orders moved back into orders"))
    for change in journal.applied(conn):
        retrying(conn, f"undo {change.name}", lambda c=change: conn.execute(c.undo_sql))  # type: ignore[misc]
        journal.forget(conn, change.name)
        results.append(ChangeResult(change.name, "removed", change.undo_sql))
    return results
