"""DDL that never stalls the MES: concurrent index builds with retries, INVALID leftovers removed,
short lock waits retried."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import errors

from mesdb import limits
from mesdb.catalogue import IndexSpec
from mesdb.db import lock_holders
from mesdb.errors import KitError

logger = logging.getLogger("mesdb")
T = TypeVar("T")
#: lock waits, deadlocks and cancellations are worth another try; everything else is a real error
RETRYABLE = (
    errors.LockNotAvailable,
    errors.DeadlockDetected,
    errors.QueryCanceled,
    errors.SerializationFailure,
)
#: the longest pause between two attempts
MAX_PAUSE_S = 10.0


def retrying(conn: psycopg.Connection, what: str, step: Callable[[], T]) -> T:
    """Run ``step`` (DDL under the run's short ``lock_timeout``); when it times out on its lock (or
    meets a deadlock), pause (doubling from ``retry_pause_s``, capped at 10 s, with jitter) and try
    again, at most ``lock_attempts`` times; then give up with who holds the lock.

    While a step waits, the MES's queries on that table queue behind it — for at most one
    ``lock_timeout``; between attempts they run.
    """
    policy = limits.current()
    pause_s = policy.retry_pause_s
    for attempt in range(1, policy.lock_attempts + 1):
        try:
            return step()
        except RETRYABLE as exc:
            if attempt == policy.lock_attempts:
                holders = lock_holders(conn)
                raise KitError(
                    f"{what}: gave up after {attempt} attempts, each waiting at most lock_timeout "
                    f"{policy.lock_timeout_ms} ms ({exc.sqlstate}: {str(exc).strip()}); the MES's queries "
                    "queued behind it no longer than that. "
                    + (f"Holding locks on the MES tables: {holders}. " if holders else "")
                    + "Run the kit again once that transaction has ended (or end it: "
                    "pg_terminate_backend), or allow more: --lock-timeout / --lock-attempts."
                ) from exc
            logger.warning(
                "%s: %s after lock_timeout %d ms (attempt %d of %d), retrying in %.1f s",
                what,
                type(exc).__name__,
                policy.lock_timeout_ms,
                attempt,
                policy.lock_attempts,
                pause_s,
            )
            time.sleep(pause_s * random.uniform(0.5, 1.0))  # jitter: two kits never retry in step
            pause_s = min(pause_s * 2, MAX_PAUSE_S)
    raise AssertionError("unreachable")


def index_state(conn: psycopg.Connection, name: str) -> str | None:
    """``None`` (absent), ``"valid"`` or ``"invalid"`` (a failed concurrent build left it behind)."""
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s AND c.relnamespace = 'public'::regnamespace",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return "valid" if row[0] else "invalid"


def build_index(conn: psycopg.Connection, spec: IndexSpec, *, ours: bool) -> str:
    """``CREATE INDEX CONCURRENTLY`` (autocommit); returns what happened to ``spec``:

    ``created``; ``rebuilt`` (an INVALID index the kit's own failed build left — ``ours``: the caller
    recorded the build's intent before it started — dropped concurrently and built again);
    ``present`` (a valid index of that name, the kit's or not); ``foreign-invalid`` (an INVALID index
    of that name the kit did not build: left alone, the DBA decides).
    """
    state = index_state(conn, spec.name)
    if state == "valid":
        return "present"
    if state == "invalid" and not ours:
        return "foreign-invalid"

    def build() -> None:
        if index_state(conn, spec.name) == "invalid":
            conn.execute(spec.drop_sql)
        # the build's own lock (SHARE UPDATE EXCLUSIVE) does not block the MES's reads or writes,
        # so it may wait for other DDL or a vacuum longer than the kit's usual lock_timeout, and
        # may run longer than a batch's statement_timeout
        conn.execute("SET lock_timeout = '5min'")
        conn.execute("SET statement_timeout = 0")
        try:
            conn.execute(spec.create_sql())
        finally:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")

    retrying(conn, f"CREATE INDEX CONCURRENTLY {spec.name}", build)
    if index_state(conn, spec.name) != "valid":
        raise KitError(f"index {spec.name} is still INVALID after its build")
    return "rebuilt" if state == "invalid" else "created"
