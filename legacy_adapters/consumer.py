"""The pricing worker's loop: read/reclaim jobs, call the legacy backend, record the outcome once.

Delivery is at least once: an entry stays pending until its outcome is recorded (and acked in
the same script). A worker that dies mid-job stops extending its lease; after the visibility
timeout another worker takes the entry with XAUTOCLAIM and runs it again. The completion
script records a result only if the job is not done yet, so a late duplicate changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from redis.exceptions import RedisError

from legacy_adapters import metrics
from legacy_adapters.backend import (
    BackendUnavailableError,
    PermanentPricingError,
    PricingBackend,
    TransientPricingError,
)
from legacy_adapters.queue import PricingQueue
from resilience.backoff import backoff_ceiling, backoff_delay
from telemetry.propagation import consumer_span

log = logging.getLogger("legacy_adapters.worker")


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


class QuoteWorker:
    """Runs up to ``concurrency`` jobs at once; knows the backend only by its interface."""

    def __init__(self, queue: PricingQueue, backend: PricingBackend, settings: WorkerSettings, *,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self.queue = queue
        self.backend = backend
        self.settings = settings
        self._tracer_provider = tracer_provider
        self._running: dict[asyncio.Task[None], tuple[str, str]] = {}  # task → (job id, entry id)
        self._unavailable = 0          # consecutive calls that did not reach the legacy
        self._paused_until = 0.0       # monotonic time before which this worker claims nothing

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then finish (or hand back) what is running."""
        s = self.settings
        await self.queue.ensure_group()
        metrics.WORKER_CONCURRENCY.set(s.concurrency)
        keeper = asyncio.create_task(self._keep_leases(stop))
        last_reclaim = 0.0
        errors = 0
        while not stop.is_set():
            if (pause := self._paused_until - time.monotonic()) > 0:
                # our legacy instance is down: leave the jobs to workers whose instance is up
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                continue
            free = s.concurrency - len(self._running)
            if free <= 0:
                await asyncio.wait(list(self._running), timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                await self.queue.promote_due()
                entries: list[tuple[str, Mapping[str, str]]] = []
                if time.monotonic() - last_reclaim >= min(5.0, s.visibility_timeout / 2):
                    last_reclaim = time.monotonic()
                    entries = await self.queue.reclaim(s.name, int(s.visibility_timeout * 1000), free)
                    metrics.RECLAIMED.inc(len(entries))
                    if entries:
                        log.info("reclaimed %d stale entries", len(entries), extra={
                            "event.action": "pricing-reclaim", "messaging.batch.message_count": len(entries)})
                if not entries:
                    entries = await self.queue.read(s.name, free, s.block_ms)
                errors = 0
            except RedisError as exc:
                errors += 1
                log.error("redis error in the worker loop: %s", exc, extra={
                    "event.action": "pricing-redis-error", "error.type": type(exc).__name__})
                await asyncio.sleep(min(10.0, 0.2 * 2 ** errors))
                continue
            for entry, fields in entries:
                task = asyncio.create_task(self._handle(entry, fields))
                self._running[task] = (fields.get("job_id", ""), entry)
                task.add_done_callback(self._running.pop)
        await self._drain()
        keeper.cancel()

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
            job_id, entry = running[task]
            if await self.queue.hand_back(job_id, entry):
                metrics.JOBS.labels(outcome="handed_back").inc()
                log.info("job %s handed back on shutdown", job_id,
                         extra={"event.action": "pricing-hand-back"})

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        """Reset the idle time of our entries well before the visibility timeout runs out."""
        interval = self.settings.visibility_timeout / 3
        while True:
            await asyncio.sleep(interval)
            for _job_id, entry in list(self._running.values()):
                try:
                    await self.queue.extend(entry, self.settings.name)
                except RedisError as exc:
                    log.warning("could not extend lease of %s: %s", entry, exc)

    async def _handle(self, entry: str, fields: Mapping[str, str]) -> None:
        job_id = fields.get("job_id", "")
        attrs = {"messaging.system": "redis", "messaging.message.id": job_id,
                 "messaging.destination.name": self.queue.keys.stream}
        started = time.perf_counter()
        with consumer_span("pricing:stream process", fields, attributes=attrs,
                           tracer_provider=self._tracer_provider):
            outcome = await self._process(job_id, entry)
        metrics.JOBS.labels(outcome=outcome).inc()
        if outcome != "skipped":
            metrics.JOB_DURATION.labels(outcome=outcome).observe(time.perf_counter() - started)

    async def _process(self, job_id: str, entry: str) -> str:
        s = self.settings
        status, attempt = await self.queue.start(job_id, entry, s.name)
        if status in ("done", "failed", "missing"):
            return "skipped"
        metrics.WORKER_IN_FLIGHT.inc()
        try:
            job = await self.queue.job(job_id) or {}
            if attempt > s.max_attempts:  # it keeps killing workers: stop trying
                return await self._dead(job_id, entry, "attempts_exhausted",
                                        f"gave up after {attempt - 1} attempts that never finished")
            model = await self.queue.model(job.get("sha256", ""))
            if model is None:
                return await self._dead(job_id, entry, "model_missing",
                                        "the model expired from the store before it was priced")
            try:
                result = await self.backend.price(model, material=job.get("material", ""))
            except PermanentPricingError as exc:
                return await self._dead(job_id, entry, "permanent", str(exc))
            except BackendUnavailableError as exc:
                return await self._not_reached(job_id, entry, exc)
            except TransientPricingError as exc:
                if attempt >= s.max_attempts:
                    return await self._dead(job_id, entry, "attempts_exhausted",
                                            f"gave up after {attempt} attempts: {exc}")
                delay = backoff_delay(attempt, base=s.retry_base, cap=s.retry_max)
                await self.queue.retry(job_id, entry, str(exc), delay)
                metrics.RETRIES.inc()
                log.warning("job %s attempt %d failed, retry in %.1f s: %s", job_id, attempt, delay, exc,
                            extra={"event.action": "pricing-retry", "pricing.job_id": job_id})
                return "retry"
            self._unavailable = 0
            applied, followers = await self.queue.complete(job_id, entry, json.dumps(result.as_json()),
                                                           s.cache_ttl)
            log.info("job %s priced %s EUR (%d waiting duplicates)", job_id, result.price_eur, followers,
                     extra={"event.action": "pricing-done", "pricing.job_id": job_id,
                            "pricing.duplicate": not applied})
            return "done" if applied else "duplicate"
        finally:
            metrics.WORKER_IN_FLIGHT.dec()

    async def _not_reached(self, job_id: str, entry: str, exc: BackendUnavailableError) -> str:
        """The legacy was never reached: hand the job back (attempt not counted), pause this worker.

        Another worker (another legacy instance) takes the job at once; this one claims nothing
        for a back-off that doubles while its instance stays unreachable (``retry_base`` … 10 s).
        A job whose every worker's instance is down stays queued, not dead-lettered.
        """
        s = self.settings
        self._unavailable += 1
        pause = backoff_ceiling(self._unavailable, base=s.retry_base, cap=min(s.retry_max, 10.0))
        self._paused_until = time.monotonic() + pause
        await self.queue.hand_back(job_id, entry)
        metrics.BACKEND_UNAVAILABLE.inc()
        log.warning("job %s handed back, its attempt not counted; pausing %.1f s: %s", job_id, pause, exc,
                    extra={"event.action": "pricing-backend-unavailable", "pricing.job_id": job_id})
        return "handed_back"

    async def _dead(self, job_id: str, entry: str, reason: str, detail: str) -> str:
        await self.queue.dead_letter(job_id, entry, detail)
        metrics.DEAD_LETTERS.labels(reason=reason).inc()
        log.error("job %s dead-lettered: %s", job_id, detail, extra={
            "event.action": "pricing-dead-letter", "event.reason": reason, "pricing.job_id": job_id})
        return "dead_letter"
