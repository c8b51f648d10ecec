"""Business probes of the MES database, read-only, every ``--probe-interval`` seconds.

Per cycle (plans and timings on 1,000,000 orders in ``docs/sidecar.md``):

* active statuses: count + age of the oldest order → ``orders_by_status``,
  ``orders_oldest_age_seconds`` (index-only scan with the proposed partial index,
  a sequential scan without it);
* terminal statuses (CLOSED, CANCELLED): exact count by a sequential scan, only every
  ``terminal_count_interval`` seconds (and on the first cycle); with them the database's size
  and the archive's row estimate → ``mes_database_size_bytes``, ``mes_orders_archive_rows``;
* ``orders_new_per_minute``: a primary-key range scan above an id watermark taken at
  least a minute earlier (ids grow with creation time); a full scan in the first minute;
* ``pricing_calculations_in_progress``: a primary-key range scan above the lowest id
  still running at the previous probe.
"""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timedelta

import asyncpg

from contracts.lifecycle import ACTIVE_STATUS_NAMES as ACTIVE_STATUSES
from contracts.lifecycle import TERMINAL_STATUS_NAMES as TERMINAL_STATUSES
from sidecar import metrics
from sidecar import probe_queries as sql
from sidecar.probe_runner import ProbeRunner

NEW_ORDERS_WINDOW = timedelta(minutes=1, seconds=1)  # a second of slack for commit delays
PRICING_ID_MARGIN = 1000  # ids below the watermark still re-checked: inserts committed late
PROBES = ("active_orders", "terminal_orders", "new_orders", "pricing")  # the steps of one cycle


class BusinessProbes:
    """The probe cycle; ``run_once()`` for one cycle, ``run()`` forever.

    ``new_orders_window``: how old (database clock) an id watermark must be before
    ``orders_new_per_minute`` scans above it; a minute and a second, tests shorten it.
    """

    def __init__(self, pool: asyncpg.Pool, runner: ProbeRunner, *, terminal_count_interval: float = 300.0,
                 instance: str | None = None, new_orders_window: timedelta = NEW_ORDERS_WINDOW) -> None:
        self._pool = pool
        self._runner = runner
        runner.declare(*PROBES)
        self._terminal_interval = terminal_count_interval
        self._terminal_due = 0.0  # monotonic time of the next terminal count; 0 = now
        self._order_marks: collections.deque[tuple[datetime, int]] = collections.deque(maxlen=64)
        self._new_orders_window = new_orders_window
        self._pricing_from = 0
        # the probing sidecar's own legacy instance reads 0 from the first cycle, not "no data"
        self._pricing_labels: set[str] = {instance} if instance else set()

    async def run_once(self) -> None:
        """One cycle: every probe step, each timed and guarded on its own."""
        await self._runner.run("active_orders", self._active_orders)
        due = time.monotonic() >= self._terminal_due
        if due and await self._runner.run("terminal_orders", self._terminal_orders):
            self._terminal_due = time.monotonic() + self._terminal_interval
        await self._runner.run("new_orders", self._new_orders)
        await self._runner.run("pricing", self._pricing)

    async def run(self, interval: float) -> None:
        """Run a cycle every ``interval`` seconds (a slow cycle delays the next, never overlaps)."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.run_once()
            next_at = max(next_at + interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _active_orders(self) -> None:
        rows = {r["status"]: r for r in await self._pool.fetch(sql.ACTIVE_ORDERS)}
        ages = {}
        for status in ACTIVE_STATUSES:
            row = rows.get(status)
            metrics.ORDERS_BY_STATUS.labels(status).set(row["orders"] if row else 0)
            ages[status] = max(row["oldest_age_s"], 1e-6) if row else 0.0
        metrics.ORDERS_OLDEST_AGE.update(ages)

    async def _terminal_orders(self) -> None:
        counts = {r["status"]: r["orders"] for r in await self._pool.fetch(sql.TERMINAL_ORDERS)}
        for status in TERMINAL_STATUSES:
            metrics.ORDERS_BY_STATUS.labels(status).set(counts.get(status, 0))
        size = await self._pool.fetchrow(sql.DATABASE_SIZE)  # capacity planning: as slow-moving as these
        metrics.MES_DATABASE_BYTES.set(size["bytes"])
        metrics.MES_ORDERS_ARCHIVE_ROWS.set(size["archived"])

    async def _new_orders(self) -> None:
        mark = await self._pool.fetchrow(sql.ORDERS_WATERMARK)
        now, max_id = mark["at"], mark["max_id"] or 0
        watermark = 0
        window = self._new_orders_window
        for at, marked_id in self._order_marks:  # oldest first: keep the newest old-enough one
            if at <= now - window:
                watermark = marked_id
        while len(self._order_marks) > 1 and self._order_marks[1][0] <= now - window:
            self._order_marks.popleft()
        self._order_marks.append((now, max_id))
        metrics.ORDERS_NEW_PER_MINUTE.set(await self._pool.fetchval(sql.NEW_ORDERS, watermark))

    async def _pricing(self) -> None:
        newest = await self._pool.fetchval(sql.PRICING_WATERMARK)
        rows = await self._pool.fetch(sql.PRICING_IN_PROGRESS, max(self._pricing_from - PRICING_ID_MARGIN, 0))
        running = {r["instance_id"]: r["running"] for r in rows}
        self._pricing_from = min([r["first_id"] for r in rows], default=newest + 1)
        for instance in self._pricing_labels | set(running):
            metrics.PRICING_IN_PROGRESS.labels(instance).set(running.get(instance, 0))
        self._pricing_labels |= set(running)
