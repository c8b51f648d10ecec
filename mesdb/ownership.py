"""The archive belongs to whoever owns ``orders``: same owner, same grants.

The kit runs as a DBA (often a superuser); the MES runs as its own role. The duplicate guard
(:mod:`mesdb.guards`) reads ``orders_archive`` with the privileges of the legacy's INSERT, so the
archive must be readable by every role that may write ``orders`` — exactly as if the legacy's own
migration had created it next to ``orders`` (docs/mes-data.md, "Roles and ownership").
"""

from __future__ import annotations

import psycopg
from psycopg import sql

#: table privileges GRANT knows (aclexplode's privilege_type), the only words put into a GRANT
PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
)

_GRANTS = """
SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = %s::regclass AND a.grantee <> c.relowner
ORDER BY 1, 2
"""


def owner(conn: psycopg.Connection, table: str) -> str:
    """The role owning ``table``."""
    row = conn.execute(
        "SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = %s::regclass",
        (table,),
    ).fetchone()
    assert row is not None
    return str(row[0])


def grants(conn: psycopg.Connection, table: str) -> set[tuple[str, str]]:
    """(role or ``PUBLIC``, privilege) granted on ``table`` to anyone but its owner."""
    return {(str(r), str(p)) for r, p in conn.execute(_GRANTS, (table,)).fetchall()}


def matches(conn: psycopg.Connection, table: str, model: str) -> bool:
    """True when ``table`` has ``model``'s owner and grants already (nothing to change)."""
    return owner(conn, table) == owner(conn, model) and grants(conn, table) >= grants(conn, model)


def function_owners(conn: psycopg.Connection, functions: tuple[str, ...]) -> set[str]:
    """The roles owning ``functions`` (signatures such as ``mesdb.f()``)."""
    rows = conn.execute(
        "SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = ANY(%s::regprocedure[])",
        (list(functions),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def own_functions(conn: psycopg.Connection, functions: tuple[str, ...], model: str) -> None:
    """Give ``functions`` the owner of ``model`` (they run ``SECURITY DEFINER`` as that role)."""
    wanted = owner(conn, model)
    if function_owners(conn, functions) != {wanted}:
        for signature in functions:
            conn.execute(
                sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), sql.Identifier(wanted))
            )


def align(conn: psycopg.Connection, table: str, model: str) -> None:
    """Give ``table`` the owner and the grants of ``model`` (inside the caller's transaction).

    The kit's role must be allowed to act as ``model``'s owner (a superuser, or a member of it),
    which a DBA migrating that owner's tables is.
    """
    wanted = owner(conn, model)
    if owner(conn, table) != wanted:
        conn.execute(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(wanted))
        )
    for role, privilege in sorted(grants(conn, model) - grants(conn, table)):
        if privilege not in PRIVILEGES:
            continue  # a privilege this kit does not know: left to the DBA
        grantee = sql.SQL("PUBLIC") if role == "PUBLIC" else sql.Identifier(role)
        conn.execute(
            sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), sql.Identifier(table), grantee)
        )
