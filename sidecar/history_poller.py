"""Order-change events from the MES database: changes made without passing the sidecar.

Polls ``order_status_history`` by increasing id (a primary-key range scan, ~10 µs)
every second, starting from the current maximum. Ids are taken from a sequence when a
transaction inserts, not when it commits, so a slow transaction can make id 41 visible
*after* 42: ids skipped over are remembered as gaps and looked up again for
``gap_ttl_s`` seconds (a rolled-back insert leaves a gap that never fills).
Duplicates of proxy events (and of other sidecars' pollers) are removed by the
publisher's dedupe key.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from contracts.order_events import CREATED, STATUS_CHANGED, OrderEvent
from sidecar.events import EventPublisher
from sidecar.probe_runner import ProbeRunner

logger = logging.getLogger("sidecar.history")

_COLUMNS = "id, order_id, old_status, new_status, changed_at"
_AFTER = f"SELECT {_COLUMNS} FROM order_status_history WHERE id > $1 ORDER BY id LIMIT $2"  # noqa: S608
_GAPS = f"SELECT {_COLUMNS} FROM order_status_history WHERE id = ANY($1::bigint[]) ORDER BY id"  # noqa: S608
_MAX_ID = "SELECT coalesce(max(id), 0) FROM order_status_history"


def event_from_row(row: asyncpg.Record, instance: str) -> OrderEvent:
    """A history row as an event (``old_status`` NULL marks the creation)."""
    return OrderEvent(type=CREATED if row["old_status"] is None else STATUS_CHANGED,
                      order_id=row["order_id"], old_status=row["old_status"], new_status=row["new_status"],
                      occurred_at=row["changed_at"].isoformat(), source="db", instance=instance,
                      history_id=row["id"])


class HistoryPoller:
    """Turns new ``order_status_history`` rows into events for ``publisher``."""

    def __init__(self, pool: asyncpg.Pool, publisher: EventPublisher, runner: ProbeRunner, *,
                 instance: str, batch: int = 1000, gap_ttl_s: float = 30.0, max_gaps: int = 10_000) -> None:
        self._pool = pool
        self._publisher = publisher
        self._runner = runner
        runner.declare("order_history")
        self._instance = instance
        self._batch = batch
        self._gap_ttl = gap_ttl_s
        self._max_gaps = max_gaps
        self.last_id: int | None = None
        self._gaps: dict[int, float] = {}  # history id → monotonic deadline

    async def poll_once(self) -> int:
        """One poll; returns the number of events submitted. The first call only finds the start."""
        if self.last_id is None:
            self.last_id = int(await self._pool.fetchval(_MAX_ID))
            return 0
        rows = list(await self._pool.fetch(_AFTER, self.last_id, self._batch))
        if self._gaps:
            now = time.monotonic()
            self._gaps = {i: t for i, t in self._gaps.items() if t > now}
            found = await self._pool.fetch(_GAPS, list(self._gaps)) if self._gaps else []
            for row in found:
                self._gaps.pop(row["id"], None)
            rows = [*found, *rows]
        expected = self.last_id + 1
        deadline = time.monotonic() + self._gap_ttl
        for row in rows:
            if row["id"] >= expected:
                first_gap = max(expected, row["id"] - self._max_gaps)  # bounded, even after a huge rollback
                self._gaps.update(dict.fromkeys(range(first_gap, row["id"]), deadline))
                expected = row["id"] + 1
                self.last_id = row["id"]
            self._publisher.submit(event_from_row(row, self._instance))
        while len(self._gaps) > self._max_gaps:  # a huge rolled-back batch: give up on the oldest
            self._gaps.pop(next(iter(self._gaps)))
        return len(rows)

    async def run(self, interval: float) -> None:
        """Poll forever, every ``interval`` seconds; failures are counted and retried."""
        while True:
            await self._runner.run("order_history", self.poll_once)
            await asyncio.sleep(interval)
