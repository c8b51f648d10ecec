"""Moving orders between ``orders`` and ``orders_archive`` in verified, resumable batches.

Each batch is one transaction: lock the rows (``SKIP LOCKED``), copy them, compare count and
checksum of both copies, delete the originals, record the batch in ``mesdb.moves``, commit.
Readers see every order exactly once at every commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import psycopg
from psycopg import errors

from mesdb import limits
from mesdb.errors import KitError
from mesdb.legacy import ARCHIVE, ORDERS, TERMINAL

#: orders CLOSED/CANCELLED longer ago than this are cold
DEFAULT_AGE = timedelta(days=30)
#: sweeps over the ids per run: later ones take the rows an MES request had locked
SWEEPS = 5
#: the advisory lock (``pg_advisory*``, one bigint: "mesdb" + 1) every archiving batch holds shared
#: for its transaction and ``unsplit`` holds exclusive for its session: while a rollback runs, no
#: batch moves an order back into the archive it is emptying and dropping
MOVE_LOCK = 0x6D6573_6462_0001
Direction = Literal["archive", "restore"]


@dataclass(frozen=True, slots=True)
class MoveReport:
    """Rows moved by one run, in how many batches, and how long it took."""

    direction: Direction
    rows: int
    batches: int
    seconds: float


def _may_archive(conn: psycopg.Connection) -> bool:
    """Take :data:`MOVE_LOCK` shared for this transaction, without waiting; False while an unsplit
    holds it, or once the archive is gone."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock_shared(%s) AND to_regclass(%s) IS NOT NULL", (MOVE_LOCK, ARCHIVE)
    ).fetchone()
    return bool(row and row[0])


def move_batch(
    conn: psycopg.Connection, direction: Direction, *, batch: int, after_id: int, age: timedelta = DEFAULT_AGE
) -> tuple[int, int]:
    """Move one verified batch; returns ``(rows moved, last id looked at)`` (0 rows: nothing left)."""
    source, target = (
        (f'ONLY "{ORDERS}"', f'"{ARCHIVE}"')
        if direction == "archive"
        else (f'"{ARCHIVE}"', f'ONLY "{ORDERS}"')
    )
    eligible = (
        "status = ANY(%(terminal)s) AND status_changed_at < now() - %(age)s"
        if direction == "archive"
        else "true"
    )
    args: dict[str, object] = {"terminal": list(TERMINAL), "age": age, "after": after_id, "batch": batch}
    try:
        return _move_batch(conn, direction, source, target, eligible, args)
    except (errors.QueryCanceled, errors.LockNotAvailable) as exc:
        policy = limits.current()
        raise KitError(
            f"{direction}: the batch after id {after_id} was stopped ({exc.sqlstate}: {str(exc).strip()}) "
            f"under statement_timeout {policy.statement_timeout_ms} ms / lock_timeout "
            f"{policy.lock_timeout_ms} ms; rolled back, nothing of it moved. Run again with a smaller "
            "--batch or a larger --statement-timeout; what moved before is kept."
        ) from exc


def _move_batch(
    conn: psycopg.Connection,
    direction: Direction,
    source: str,
    target: str,
    eligible: str,
    args: dict[str, object],
) -> tuple[int, int]:
    after_id = int(args["after"])  # type: ignore[call-overload]
    with conn.transaction():
        if direction == "archive" and not _may_archive(conn):
            return 0, after_id  # an unsplit is running (or done): this pass stops here
        # a batch never runs unbounded: past the limit it is rolled back (nothing half-moved)
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            (f"{limits.current().statement_timeout_ms}ms",),
        )
        conn.execute("SET LOCAL mesdb.moving = 'on'")
        picked = conn.execute(
            f"SELECT id FROM {source} WHERE id > %(after)s AND {eligible} "  # noqa: S608
            "ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED",
            args,
        ).fetchall()
        if not picked:
            return 0, after_id
        ids = [r[0] for r in picked]
        digest = "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t.id)) FROM {} t WHERE t.id = ANY(%s)"
        before = conn.execute(digest.format(source), (ids,)).fetchone()
        conn.execute(
            f"INSERT INTO {target.replace('ONLY ', '')} SELECT * FROM {source} WHERE id = ANY(%s)",  # noqa: S608
            (ids,),
        )
        copied = conn.execute(digest.format(target), (ids,)).fetchone()
        if before != copied or before is None or before[0] != len(ids):
            raise KitError(
                f"{direction}: copy of ids {ids[0]}..{ids[-1]} differs ({before} vs {copied}); rolled back"
            )
        conn.execute(f"DELETE FROM {source} WHERE id = ANY(%s)", (ids,))  # noqa: S608
        conn.execute(
            "INSERT INTO mesdb.moves (direction, rows_moved, checksum) VALUES (%s, %s, %s)",
            (direction, len(ids), before[1]),
        )
    return len(ids), ids[-1]


def move_all(
    conn: psycopg.Connection,
    direction: Direction,
    *,
    batch: int = 5000,
    age: timedelta = DEFAULT_AGE,
    pause_s: float = 0.0,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MoveReport:
    """Move batches until none is left (or ``max_batches``); ``pause_s`` between them spares the MES.

    One sweep walks the ids upwards; rows an MES request had locked are skipped (``SKIP LOCKED``),
    so further sweeps from the start pick them up while a sweep still finds any (at most
    ``SWEEPS``; what is left then, the next archiver pass takes).
    """
    started, rows, batches = time.monotonic(), 0, 0
    for _ in range(SWEEPS):
        last, swept = 0, 0
        while max_batches is None or batches < max_batches:
            moved, last = move_batch(conn, direction, batch=batch, after_id=last, age=age)
            if not moved:
                break
            rows, batches, swept = rows + moved, batches + 1, swept + moved
            if progress:
                progress(rows, last)
            if pause_s:
                time.sleep(pause_s)
        if not swept or (max_batches is not None and batches >= max_batches):
            break
    return MoveReport(direction, rows, batches, time.monotonic() - started)
