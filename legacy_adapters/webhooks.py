"""Job-finished webhooks: signed per partner, retried with back-off, isolated per partner.

Any worker delivers them. A finished job's id lands in the webhook inbox of its shard (same script
that records the outcome); the notifier leases due webhooks through the queue (one schedule per
owner in each shard, the shards taken in turn), at most ``max_in_flight`` at once and at most
``per_partner`` of one owner, so a partner endpoint that hangs only ever holds its own slots (each
attempt is also bounded by ``timeout``). A delivery POSTs the job's JSON (the partner view,
``job_view``) with Standard Webhooks headers signed by every active secret of the job's owner
(``webhook_signing``, ``webhook_secrets``); 2xx forgets it, anything else schedules another try —
each outcome is one queue step (:class:`PricingQueue`), which records it on the job. Receivers
must accept duplicates (at least once). Targets must be public addresses unless ``allow_private``
(``callback_guard``): a literal private target is refused outright (outcome ``refused``), a host
name whose addresses are all private fails to connect (retried); redirects are never followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import aiohttp
from aiohttp.abc import AbstractResolver

from contracts.webhook_secrets import WebhookSecretStore
from legacy_adapters import metrics
from legacy_adapters.callback_guard import CallbackRefused, PublicOnlyResolver, check_callback_url
from legacy_adapters.job_view import Audience, job_json
from legacy_adapters.lanes import Lanes
from legacy_adapters.queue import PricingQueue, now_ms
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.webhook_signing import signature_header
from resilience.backoff import backoff_delay
from sharedstate.errors import REDIS_ERRORS, closed_connection_as_connection_error

log = logging.getLogger("legacy_adapters.webhooks")
OUTCOMES = ("delivered", "retry", "gave_up", "refused", "no_secret")


class WebhookNotifier:
    """Delivers due webhooks until stopped; one instance per worker process."""

    def __init__(self, queue: PricingQueue | ShardedQueue, secrets: WebhookSecretStore, *,
                 max_attempts: int = 8, base: float = 2.0, cap: float = 600.0, timeout: float = 10.0,
                 lease_ms: int = 60_000,
                 max_in_flight: int = 32, per_partner: int = 2, allow_private: bool = False,
                 resolver: AbstractResolver | None = None) -> None:
        if not 1 <= per_partner <= max_in_flight:
            raise ValueError("per_partner must be between 1 and max_in_flight")
        self.queue = ShardedQueue.of(queue)
        self._lanes = Lanes(self.queue, what="webhook claim")  # its own round-robin cursor
        self.secrets = secrets
        self.allow_private = allow_private
        #: Resolver for callback host names; default: ``PublicOnlyResolver`` unless ``allow_private``.
        self.resolver = resolver
        self.max_attempts = max_attempts
        self.base, self.cap = base, cap
        self.lease_ms = lease_ms
        self.max_in_flight, self.per_partner = max_in_flight, per_partner
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._in_flight: dict[str, int] = {}  # owner → deliveries running in this process
        for outcome in OUTCOMES:  # every outcome exists at 0 from start-up
            metrics.WEBHOOKS.labels(outcome=outcome)

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session deliveries go through (public-only resolver unless ``allow_private``)."""
        resolver = self.resolver or (None if self.allow_private else PublicOnlyResolver())
        connector = aiohttp.TCPConnector(resolver=resolver, limit=self.max_in_flight)
        return aiohttp.ClientSession(timeout=self._timeout, connector=connector)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and deliver while slots are free; poll every 0.5 s while idle or full."""
        running: set[asyncio.Task[None]] = set()
        async with self.session() as session:
            while not stop.is_set():
                claimed = None
                if len(running) < self.max_in_flight:
                    busy = [o for o, n in self._in_flight.items() if n >= self.per_partner]
                    claimed = await self._claim(busy)
                if claimed is None:
                    await _wait_any(stop, running, 0.5)
                    continue
                lane, job_id, owner = claimed
                self._in_flight[owner] = self._in_flight.get(owner, 0) + 1
                task = asyncio.create_task(self._deliver_slot(session, lane, job_id, owner))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:  # each attempt is bounded by the timeout; an unfinished one is leased anyway
                await asyncio.wait(running, timeout=self._timeout.total)
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    async def _claim(self, busy: list[str]) -> tuple[PricingQueue, str, str] | None:
        """Lease the next due webhook, shard after shard (round robin; a failing shard waits alone)."""
        for lane in await self._lanes.current():
            try:
                with closed_connection_as_connection_error():  # uvloop: a write to a dead node
                    claimed = await lane.claim_webhook(self.lease_ms, busy)
            except REDIS_ERRORS as exc:  # Redis down: keep the loop alive
                self._lanes.failed(lane, exc)
                continue
            self._lanes.ok(lane)
            if claimed is not None:
                self._lanes.order.served(lane)
                return lane, *claimed
        return None

    async def _deliver_slot(self, session: aiohttp.ClientSession, lane: PricingQueue, job_id: str,
                            owner: str) -> None:
        metrics.WEBHOOKS_IN_FLIGHT.inc()
        try:
            with closed_connection_as_connection_error():
                await self.deliver(session, job_id, lane)
        except REDIS_ERRORS as exc:  # Redis trouble mid-delivery: the lease brings it back
            log.warning("webhook delivery of job %s failed: %s", job_id, exc)
        finally:
            metrics.WEBHOOKS_IN_FLIGHT.dec()
            left = self._in_flight.get(owner, 1) - 1
            if left > 0:
                self._in_flight[owner] = left
            else:
                self._in_flight.pop(owner, None)

    async def deliver(self, session: aiohttp.ClientSession, job_id: str, lane: PricingQueue | None = None
                      ) -> None:
        """One attempt for ``job_id`` (of ``lane``, default: the layout its id names); reschedules or
        forgets it."""
        lane = lane or self.queue.for_job(job_id)
        if lane is None:
            return
        job = await lane.job(job_id)
        owner = (job or {}).get("owner", "")
        if not job or not job.get("callback_url"):
            await lane.drop_webhook(job_id, owner)
            return
        attempt = int(job.get("webhook_attempts") or 0) + 1
        try:
            check_callback_url(job["callback_url"], allow_private=self.allow_private)
        except CallbackRefused as refused:
            await self._give_up(lane, job_id, owner, attempt, str(refused), outcome="refused")
            return
        self.secrets.maybe_reload()
        keys = self.secrets.signing_keys(owner)
        if not keys:  # never sent unsigned; retried: the operator may add the secret meanwhile
            await self._retry(lane, job_id, owner, attempt, "no webhook secret for this owner", "no_secret")
            return
        audience: Audience = "operator" if owner == "internal" else "partner"
        body = json.dumps(job_json(job, location=job.get("location", ""), audience=audience)).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": job_id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": signature_header(job_id, timestamp, body, keys),
                   "X-Webhook-Attempt": str(attempt)}
        error = ""
        try:
            async with session.post(job["callback_url"], data=body, headers=headers,
                                    allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    await lane.webhook_delivered(job_id, owner, attempt)
                    metrics.WEBHOOKS.labels(outcome="delivered").inc()
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        await self._retry(lane, job_id, owner, attempt, error, "retry")

    async def _retry(self, lane: PricingQueue, job_id: str, owner: str, attempt: int, error: str,
                     outcome: str) -> None:
        if attempt >= self.max_attempts:
            await self._give_up(lane, job_id, owner, attempt, error, outcome="gave_up")
            return
        due = now_ms() + int(backoff_delay(attempt, base=self.base, cap=self.cap) * 1000)
        await lane.webhook_retry(job_id, owner, attempt, error, due)
        metrics.WEBHOOKS.labels(outcome=outcome).inc()
        if outcome == "no_secret":
            log.error("webhook for job %s not sent: owner %s has no webhook secret", job_id, owner,
                      extra={"event.action": "pricing-webhook", "event.outcome": "failure",
                             "event.reason": "no_secret"})

    async def _give_up(self, lane: PricingQueue, job_id: str, owner: str, attempt: int, error: str, *,
                       outcome: str) -> None:
        await lane.webhook_gave_up(job_id, owner, attempt, error)
        metrics.WEBHOOKS.labels(outcome=outcome).inc()
        log.error("webhook for job %s given up after %d attempt(s): %s", job_id, attempt, error,
                  extra={"event.action": "pricing-webhook", "event.outcome": "failure",
                         "event.reason": outcome})


async def _wait_any(stop: asyncio.Event, running: set[asyncio.Task[None]], seconds: float) -> None:
    """Until ``stop``, a delivery ends (a slot frees) or ``seconds`` pass."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({stopper, *running}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
