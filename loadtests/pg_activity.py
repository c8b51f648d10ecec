"""MES database activity from ``pg_stat_database``: transactions and rows read per second.

``xact_commit + xact_rollback`` counts transactions (the legacy MES runs each statement in its
own, so for it this is close to queries); ``tup_returned`` counts rows read by scans — what the
legacy's un-indexed list query and its ``count(*)`` cost. PostgreSQL 15 flushes a backend's
counters at most once a second while busy and within 10 s when idle, so callers leave a settle
pause after a run before the closing sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

_QUERY = ("SELECT xact_commit + xact_rollback, tup_returned, tup_fetched FROM pg_stat_database "
          "WHERE datname = current_database()")


@dataclass(frozen=True)
class DbSample:
    """Cumulative counters at one moment (monotonic clock)."""

    at: float
    transactions: int
    rows_returned: int
    rows_fetched: int


@dataclass(frozen=True)
class DbRate:
    """Per-second rates between two samples."""

    seconds: float
    transactions_per_s: float
    rows_read_per_s: float

    def minus(self, baseline: DbRate) -> DbRate:
        """This rate with an idle baseline (probes, health checks) taken off, never below 0."""
        return DbRate(seconds=self.seconds,
                      transactions_per_s=max(self.transactions_per_s - baseline.transactions_per_s, 0.0),
                      rows_read_per_s=max(self.rows_read_per_s - baseline.rows_read_per_s, 0.0))


def sample(dsn: str) -> DbSample:
    """Read the counters of the DSN's database (one short connection)."""
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        row = conn.execute(_QUERY).fetchone()
    if row is None:
        raise RuntimeError(f"no pg_stat_database row for {dsn}")
    return DbSample(at=time.monotonic(), transactions=int(row[0]), rows_returned=int(row[1]),
                    rows_fetched=int(row[2]))


def rate(start: DbSample, end: DbSample, *, seconds: float | None = None) -> DbRate:
    """Rates between ``start`` and ``end``; ``seconds`` overrides the wall time between them
    (the load's duration, when the closing sample was taken after a settle pause)."""
    span = seconds if seconds is not None else max(end.at - start.at, 1e-9)
    return DbRate(seconds=span, transactions_per_s=(end.transactions - start.transactions) / span,
                  rows_read_per_s=(end.rows_returned - start.rows_returned) / span)


def count_orders(dsn: str) -> tuple[int, int]:
    """(orders, active orders) in the MES database."""
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), count(*) FILTER (WHERE status NOT IN ('CLOSED', 'CANCELLED')) "
                           "FROM orders").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
