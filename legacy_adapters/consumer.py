"""The pricing worker's loop: read/reclaim jobs, call the legacy backend, record the outcome once.

Delivery is at least once: an entry stays pending until its outcome is recorded (and acked in
the same script). A worker that dies mid-job stops extending its lease; after the visibility
timeout another worker takes the entry with XAUTOCLAIM and runs it again. The completion
script records a result only if the job is not done yet, so a late duplicate changes nothing.
With several shards (``ShardedQueue``) one worker serves all of them, each with its own reclaim
cursor and back-off (``lanes.py``): a flooded shard gets one turn per pass, a dead one waits alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace

from legacy_adapters import metrics
from legacy_adapters.backend import (
    BackendUnavailableError,
    PermanentPricingError,
    PricingBackend,
    TransientPricingError,
)
from legacy_adapters.lanes import LaneOrder, Lanes
from legacy_adapters.queue import PricingQueue
from legacy_adapters.shards import ShardedQueue
from resilience.backoff import backoff_ceiling, backoff_delay
from sharedstate.errors import REDIS_ERRORS, closed_connection_as_connection_error
from sharedstate.usage_counts import UsageCounts, day_of
from telemetry.propagation import consumer_span

log = logging.getLogger("legacy_adapters.worker")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSettings:
    """Per-process knobs (``python -m legacy_adapters.worker --help``)."""

    name: str
    concurrency: int = 1
    visibility_timeout: float = 30.0
    max_attempts: int = 5
    retry_base: float = 1.0
    retry_max: float = 60.0
    grace_period: float = 30.0
    cache_ttl: int = 30 * 86400
    block_ms: int = 1000
    #: tiers the queue-wait histogram labels (others: ``other``); None: every job's own tier
    tiers: frozenset[str] | None = None


Delivery = tuple[PricingQueue, str, Mapping[str, str]]  # the lane it came from, entry id, fields


class QuoteWorker:
    """Runs up to ``concurrency`` jobs at once from every shard; knows the backend only by its
    interface. ``order`` picks which shard is served next (default: round robin)."""

    def __init__(self, queue: PricingQueue | ShardedQueue, backend: PricingBackend,
                 settings: WorkerSettings, *, tracer_provider: trace.TracerProvider | None = None,
                 order: LaneOrder | None = None, usage: UsageCounts | None = None) -> None:
        self.queue = ShardedQueue.of(queue)
        self.usage = usage  # priced models per partner per day (docs/partner-api.md#usage)
        self.backend = backend
        self.settings = settings
        self._tracer_provider = tracer_provider
        self._lanes = Lanes(self.queue, order)
        self._cursors: dict[str, str] = {}  # lane prefix → where its next XAUTOCLAIM starts
        self._running: dict[asyncio.Task[None], tuple[PricingQueue, str, str]] = {}  # → (lane, job, entry)
        self._unavailable = 0          # consecutive calls that did not reach the legacy
        self._paused_until = 0.0       # monotonic time before which this worker claims nothing

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then finish (or hand back) what is running."""
        s = self.settings
        for lane in self.queue.shards:  # a shard that is down now gets its group when it answers
            await self._guarded(lane, lane.ensure_group)
        metrics.WORKER_CONCURRENCY.set(s.concurrency)
        keeper = asyncio.create_task(self._keep_leases(stop))
        last_reclaim = 0.0
        while not stop.is_set():
            if (pause := self._paused_until - time.monotonic()) > 0:
                # our legacy instance is down: leave the jobs to workers whose instance is up
                await _stop_or(stop, pause)
                continue
            free = s.concurrency - len(self._running)
            if free <= 0:
                await asyncio.wait(list(self._running), timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
                continue
            reclaim = time.monotonic() - last_reclaim >= min(5.0, s.visibility_timeout / 2)
            if reclaim:
                last_reclaim = time.monotonic()
            lanes = await self._lanes.current()
            if not lanes:  # every shard failing: wait for the first to be tried again
                await _stop_or(stop, max(0.2, self._lanes.wait_s()))
                continue
            entries = await self._collect(lanes, free, reclaim)
            for lane, entry, fields in entries:
                task = asyncio.create_task(self._handle(lane, entry, fields))
                self._running[task] = (lane, fields.get("job_id", ""), entry)
                task.add_done_callback(self._running.pop)
        await self._drain()
        keeper.cancel()

    async def _collect(self, lanes: list[PricingQueue], free: int, reclaim: bool) -> list[Delivery]:
        """Due retries promoted and (every few seconds) stale entries reclaimed in each lane, then work
        claimed: unread entries, then fairly scheduled jobs moved from the per-owner lists and read in
        the same script (the round decides when a slot is free, never earlier) — with one lane all at
        once, else in fair passes taking one entry per lane per pass. Nothing anywhere: a blocking read
        on the next lane, registered as waiting there by the claim that found it empty, so a
        submission moves its job in for this worker (``CLAIM`` in scripts.py)."""
        s = self.settings
        got: list[Delivery] = []
        for lane in lanes:
            if reclaim and len(got) < free:
                got += await self._guarded(lane, self._reclaim, lane, free - len(got)) or []
            await self._guarded(lane, lane.promote_due)
        if got:
            return got
        if len(lanes) == 1:
            got = await self._claim(lanes[0], free, s.block_ms)
        else:
            got = await self._fair_passes(lanes, free)
            if not got:  # registered in the lane it blocks on, by the claim that finds that lane empty
                got = await self._claim(self._lanes.order.order(lanes)[0], free, s.block_ms)
        return got or await self._read(self._lanes.order.order(lanes)[0], free, s.block_ms)

    async def _fair_passes(self, lanes: list[PricingQueue], free: int) -> list[Delivery]:
        """One entry per lane per pass until ``free`` are taken or a pass finds none."""
        got: list[Delivery] = []
        while len(got) < free:
            before = len(got)
            for lane in self._lanes.order.order(lanes):
                if len(got) < free:
                    got += await self._claim(lane, 1, 0)
            if len(got) == before:
                break
        return got

    async def _claim(self, lane: PricingQueue, count: int, idle_ms: int) -> list[Delivery]:
        claimed = await self._guarded(lane, lane.claim, self.settings.name, count, idle_ms)
        if not claimed or not claimed[0]:
            return []
        self._lanes.order.served(lane)
        return [(lane, entry, fields) for entry, fields in claimed[0]]

    async def _read(self, lane: PricingQueue, count: int, block_ms: int | None) -> list[Delivery]:
        batch = await self._guarded(lane, lane.read, self.settings.name, count, block_ms) or []
        if batch:
            self._lanes.order.served(lane)
        return [(lane, entry, fields) for entry, fields in batch]

    async def _reclaim(self, lane: PricingQueue, count: int) -> list[Delivery]:
        s = self.settings
        entries, self._cursors[lane.keys.prefix] = await lane.reclaim(
            s.name, int(s.visibility_timeout * 1000), count, start=self._cursors.get(lane.keys.prefix, "0-0"))
        metrics.RECLAIMED.inc(len(entries))
        if entries:
            log.info("reclaimed %d stale entries", len(entries), extra={
                "event.action": "pricing-reclaim", "messaging.batch.message_count": len(entries)})
        return [(lane, entry, fields) for entry, fields in entries]

    async def _guarded(self, lane: PricingQueue, call: Callable[..., Awaitable[T]], *args: Any) -> T | None:
        """``call(*args)`` on ``lane``; a Redis error holds that lane back (None), never the loop.
        A shard whose group is missing (created while its node was down) gets it again."""
        try:
            with closed_connection_as_connection_error():  # uvloop: a write to a dead node
                result = await call(*args)
        except REDIS_ERRORS as exc:
            self._lanes.failed(lane, exc)
            if "NOGROUP" in str(exc) and lane in self.queue.shards:
                with contextlib.suppress(*REDIS_ERRORS):
                    await lane.ensure_group()
            return None
        self._lanes.ok(lane)
        return result

    async def _drain(self) -> None:
        """Graceful stop: wait up to the grace period, then hand unfinished jobs back at once."""
        if not self._running:
            return
        running = dict(self._running)
        _done, late = await asyncio.wait(list(running), timeout=self.settings.grace_period)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for task in late:
            lane, job_id, entry = running[task]
            try:
                handed = await lane.hand_back(job_id, entry)
            except REDIS_ERRORS as exc:  # left pending: reclaimed after the visibility timeout
                log.warning("job %s not handed back (reclaimed later): %s", job_id, exc)
                continue
            if handed:
                metrics.JOBS.labels(outcome="handed_back").inc()
                log.info("job %s handed back on shutdown", job_id,
                         extra={"event.action": "pricing-hand-back"})

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        """Reset the idle time of our entries well before the visibility timeout runs out."""
        interval = self.settings.visibility_timeout / 3
        while True:
            await asyncio.sleep(interval)
            for lane, _job_id, entry in list(self._running.values()):
                try:
                    await lane.extend(entry, self.settings.name)
                except REDIS_ERRORS as exc:
                    log.warning("could not extend lease of %s: %s", entry, exc)

    async def _handle(self, lane: PricingQueue, entry: str, fields: Mapping[str, str]) -> None:
        job_id = fields.get("job_id", "")
        attrs = {"messaging.system": "redis", "messaging.message.id": job_id,
                 "messaging.destination.name": lane.keys.stream}
        started = time.perf_counter()
        with consumer_span("pricing:stream process", fields, attributes=attrs,
                           tracer_provider=self._tracer_provider):
            try:
                with closed_connection_as_connection_error():
                    outcome = await self._process(lane, job_id, entry)
            except REDIS_ERRORS as exc:  # the entry stays pending: reclaimed after the visibility timeout
                log.error("job %s left for reclaim, Redis failed: %s", job_id, exc, extra={
                    "event.action": "pricing-redis-error", "error.type": type(exc).__name__,
                    "pricing.job_id": job_id})
                return
        metrics.JOBS.labels(outcome=outcome).inc()
        if outcome != "skipped":
            metrics.JOB_DURATION.labels(outcome=outcome).observe(time.perf_counter() - started)

    async def _process(self, lane: PricingQueue, job_id: str, entry: str) -> str:
        s = self.settings
        status, attempt = await lane.start(job_id, entry, s.name)
        if status in ("done", "failed", "missing"):
            return "skipped"
        metrics.WORKER_IN_FLIGHT.inc()
        try:
            job = await lane.job(job_id) or {}
            if attempt == 1:
                self._observe_wait(job)
            if attempt > s.max_attempts:  # it keeps killing workers: stop trying
                return await self._dead(lane, job_id, entry, "attempts_exhausted",
                                        f"gave up after {attempt - 1} attempts that never finished")
            model = await lane.model(job.get("sha256", ""))
            if model is None:
                return await self._dead(lane, job_id, entry, "model_missing",
                                        "the model expired from the store before it was priced")
            try:
                result = await self.backend.price(model, material=job.get("material", ""))
            except PermanentPricingError as exc:
                return await self._dead(lane, job_id, entry, "permanent", str(exc))
            except BackendUnavailableError as exc:
                return await self._not_reached(lane, job_id, entry, exc)
            except TransientPricingError as exc:
                if attempt >= s.max_attempts:
                    return await self._dead(lane, job_id, entry, "attempts_exhausted",
                                            f"gave up after {attempt} attempts: {exc}")
                delay = backoff_delay(attempt, base=s.retry_base, cap=s.retry_max)
                await self._record(lane.retry, job_id, entry, str(exc), delay)
                metrics.RETRIES.inc()
                log.warning("job %s attempt %d failed, retry in %.1f s: %s", job_id, attempt, delay, exc,
                            extra={"event.action": "pricing-retry", "pricing.job_id": job_id})
                return "retry"
            self._unavailable = 0
            await self._count_priced(job_id, job.get("owner", ""))
            applied, followers = await self._record(lane.complete, job_id, entry,
                                                    json.dumps(result.as_json()), s.cache_ttl)
            log.info("job %s priced %s EUR (%d waiting duplicates)", job_id, result.price_eur, followers,
                     extra={"event.action": "pricing-done", "pricing.job_id": job_id,
                            "pricing.duplicate": not applied})
            return "done" if applied else "duplicate"
        finally:
            metrics.WORKER_IN_FLIGHT.dec()

    async def _count_priced(self, job_id: str, owner: str) -> None:
        """One priced model for the job's partner, once per job id (a redelivered or reclaimed job
        is not counted again), before the outcome is recorded: a crash in between leaves it counted
        and the rerun adds nothing. Never holds the job up: a failed write is counted and logged."""
        if self.usage is None or owner in ("", "internal"):
            return
        try:
            applied = await self.usage.add(owner, {day_of(time.time()): {"models_priced": 1}},
                                           mode="once", token=job_id)
        except REDIS_ERRORS as exc:
            metrics.USAGE_WRITES.labels(outcome="failed").inc()
            log.error("job %s: counting the priced model failed: %s", job_id, type(exc).__name__, extra={
                "event.action": "usage-write-failed", "pricing.job_id": job_id, "gateway.partner": owner})
            return
        metrics.USAGE_WRITES.labels(outcome="ok" if applied else "duplicate").inc()

    def _observe_wait(self, job: Mapping[str, str]) -> None:
        """Queue wait of a job's first start, by tier (a bounded label: unknown tiers are ``other``)."""
        tiers, tier = self.settings.tiers, job.get("tier") or "other"
        if tiers is not None and tier not in tiers:
            tier = "other"
        with contextlib.suppress(ValueError):
            metrics.QUEUE_WAIT.labels(tier=tier).observe(
                max(0.0, time.time() - int(job.get("created_at", "")) / 1000))

    async def _not_reached(self, lane: PricingQueue, job_id: str, entry: str, exc: BackendUnavailableError
                           ) -> str:
        """The legacy was never reached: hand the job back (attempt not counted), pause this worker.

        Another worker (another legacy instance) takes the job at once; this one claims nothing
        for a back-off that doubles while its instance stays unreachable (``retry_base`` … 10 s).
        A job whose every worker's instance is down stays queued, not dead-lettered.
        """
        s = self.settings
        self._unavailable += 1
        pause = backoff_ceiling(self._unavailable, base=s.retry_base, cap=min(s.retry_max, 10.0))
        self._paused_until = time.monotonic() + pause
        await self._record(lane.hand_back, job_id, entry)
        metrics.BACKEND_UNAVAILABLE.inc()
        log.warning("job %s handed back, its attempt not counted; pausing %.1f s: %s", job_id, pause, exc,
                    extra={"event.action": "pricing-backend-unavailable", "pricing.job_id": job_id})
        return "handed_back"

    async def _record(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """An outcome script, retried through a failover for up to the visibility timeout: the legacy
        work is done, and every outcome script is idempotent (a reclaimed copy's outcome wins once)."""
        deadline = time.monotonic() + self.settings.visibility_timeout
        for attempt in itertools.count(1):
            try:
                with closed_connection_as_connection_error():
                    return await call(*args)
            except REDIS_ERRORS as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("recording an outcome failed (attempt %d, retried): %s", attempt, exc)
                await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt))
        raise AssertionError("unreachable")

    async def _dead(self, lane: PricingQueue, job_id: str, entry: str, reason: str, detail: str) -> str:
        await self._record(lane.dead_letter, job_id, entry, detail)
        metrics.DEAD_LETTERS.labels(reason=reason).inc()
        log.error("job %s dead-lettered: %s", job_id, detail, extra={
            "event.action": "pricing-dead-letter", "event.reason": reason, "pricing.job_id": job_id})
        return "dead_letter"


async def _stop_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
