"""The MES database as an ``order-journey`` source: the order's status history, read from a replica.

Logs say what the services *did*; ``order_status_history`` says what the MES *recorded*, and it
is still there when the logs have rotated away or a line never reached Elasticsearch. One
indexed read per journey (``order_status_history`` by ``order_id``, plus the order's row), so it
belongs on the read replica (``--dsn`` of ``order-journey``, ``$MES_READ_DSN``): on-call looking
at a stuck order must not add load to the primary that is struggling. A replica that lags shows
history up to its replay point; the summary prints that point so nobody mistakes it for "now".

The session is read-only (``default_transaction_read_only``) with a 5 s statement timeout, through
asyncpg (a dependency of every deployable already; the CLI is synchronous, so one ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from yarl import URL

from telemetry.journey import LogSource

__all__ = ["DATABASE_ERRORS", "MesDatabase", "Sources"]

#: What reading the database may fail with (down, refused, timeout, bad DSN).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError,
                                                    TimeoutError)

SERVICE = "mes-database"
HISTORY = ("SELECT h.id, h.old_status, h.new_status, h.changed_at, o.source, o.partner_id, o.external_ref "
           "FROM order_status_history h JOIN orders o ON o.id = h.order_id "
           "WHERE h.order_id = $1 ORDER BY h.id")
REPLAYED_UP_TO = "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END"


class MesDatabase:
    """The order's ``order_status_history`` rows as journey lines (``service.name`` ``mes-database``)."""

    def __init__(self, dsn: str, *, statement_timeout_ms: int = 5000) -> None:
        self.dsn = dsn
        self.statement_timeout_ms = statement_timeout_ms
        self.replayed_up_to: datetime | None = None  # a replica's last replayed commit, after matching()

    async def _read(self, order_id: int) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn, timeout=5, server_settings={
            "application_name": "order-journey", "default_transaction_read_only": "on",
            "statement_timeout": str(self.statement_timeout_ms)})
        try:
            rows = await conn.fetch(HISTORY, order_id)
            self.replayed_up_to = await conn.fetchval(REPLAYED_UP_TO)
        finally:
            await conn.close()
        return list(rows)

    def matching(self, order_id: str) -> list[Mapping[str, Any]]:
        if not order_id.isdigit():
            return []  # MES order ids are integers; anything else cannot be in the table
        return [_line(order_id, row) for row in asyncio.run(self._read(int(order_id)))]

    def joined(self, keys: Mapping[str, set[str]]) -> list[Mapping[str, Any]]:
        return []  # the database knows no request or trace ids

    def describe(self) -> str:
        url = URL(self.dsn)  # never the user or password
        return f"MES database {url.host}:{url.port or 5432}{url.path}"


def _line(order_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
    old, new = row["old_status"], row["new_status"]
    line = {"@timestamp": row["changed_at"].isoformat(), "service.name": SERVICE,
            "event.dataset": "mes.order_status_history",
            "event.action": "order-created" if old is None else "order-status-changed",
            "event.outcome": "success", "order.id": order_id, "order.status.new": new,
            "message": f"order_status_history #{row['id']}: {old or '-'} -> {new} ({row['source']})"}
    if old is not None:
        line["order.status.old"] = old
    if row["partner_id"]:
        line["partner.id"] = row["partner_id"]
    return line


class Sources:
    """Several journey sources read as one (log files or Elasticsearch, plus the MES database)."""

    def __init__(self, sources: Sequence[LogSource]) -> None:
        self.sources = list(sources)

    def matching(self, order_id: str) -> Iterator[Mapping[str, Any]]:
        for source in self.sources:
            yield from source.matching(order_id)

    def joined(self, keys: Mapping[str, set[str]]) -> Iterable[Mapping[str, Any]]:
        for source in self.sources:
            yield from source.joined(keys)

    def describe(self) -> str:
        return " and ".join(source.describe() for source in self.sources)
