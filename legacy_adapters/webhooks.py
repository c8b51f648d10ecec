"""Job-finished webhooks: HMAC-signed POST to the job's ``callback_url``, retried with back-off.

Any worker delivers them: a finished job's id is put in a due-time ZSET by the same script that
records the outcome; a worker leases the next due id (so a crash mid-delivery only delays it),
POSTs the job's JSON with ``X-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` and either
forgets it (2xx) or schedules another try. Receivers must accept duplicates (at least once).
Targets must be public addresses unless ``allow_private`` (``legacy_adapters.callback_guard``):
an IP-literal or ``localhost`` target is refused outright (outcome ``refused``, no retries), a
host name whose addresses are all private fails to connect (retried: DNS may change); redirects
are never followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging

import aiohttp
from aiohttp.abc import AbstractResolver

from legacy_adapters import metrics
from legacy_adapters.backoff import backoff_delay
from legacy_adapters.callback_guard import CallbackRefused, PublicOnlyResolver, check_callback_url
from legacy_adapters.job_view import job_json
from legacy_adapters.queue import PricingQueue, now_ms

log = logging.getLogger("legacy_adapters.webhooks")
SECRET_ENV = "PRICING_WEBHOOK_SECRET"  # noqa: S105 (the variable name, not a secret)


def sign(body: bytes, secret: bytes) -> str:
    """The ``X-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str, secret: bytes) -> bool:
    """Constant-time check of an ``X-Signature`` header (what a receiver does)."""
    return hmac.compare_digest(sign(body, secret), header)


class WebhookNotifier:
    """Delivers due webhooks until stopped; one instance per worker process."""

    def __init__(self, queue: PricingQueue, secret: bytes, *, max_attempts: int = 8, base: float = 2.0,
                 cap: float = 600.0, timeout: float = 10.0, lease_ms: int = 60_000,
                 allow_private: bool = False, resolver: AbstractResolver | None = None) -> None:
        self.queue = queue
        self.allow_private = allow_private
        #: Resolver for callback host names; default: ``PublicOnlyResolver`` unless ``allow_private``.
        self.resolver = resolver
        self.secret = secret
        self.max_attempts = max_attempts
        self.base, self.cap = base, cap
        self.lease_ms = lease_ms
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session deliveries go through (public-only resolver unless ``allow_private``)."""
        resolver = self.resolver or (None if self.allow_private else PublicOnlyResolver())
        return aiohttp.ClientSession(timeout=self._timeout, connector=aiohttp.TCPConnector(resolver=resolver))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the due set every 0.5 s while idle."""
        async with self.session() as session:
            while not stop.is_set():
                try:
                    job_id = await self.queue.claim_webhook(self.lease_ms)
                except Exception as exc:  # Redis down: keep the loop alive
                    log.warning("webhook claim failed: %s", exc)
                    job_id = None
                if job_id is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
                    continue
                await self.deliver(session, job_id)

    async def deliver(self, session: aiohttp.ClientSession, job_id: str) -> None:
        """One attempt for ``job_id``; reschedules or forgets it."""
        redis, keys = self.queue.redis, self.queue.keys
        job = await self.queue.job(job_id)
        if not job or not job.get("callback_url"):
            await redis.zrem(keys.webhooks, job_id)
            return
        attempt = int(job.get("webhook_attempts") or 0) + 1
        try:
            check_callback_url(job["callback_url"], allow_private=self.allow_private)
        except CallbackRefused as refused:
            await self._give_up(job_id, attempt, str(refused), outcome="refused")
            return
        body = json.dumps(job_json(job, location=job.get("location", ""))).encode()
        headers = {"Content-Type": "application/json", "X-Signature": sign(body, self.secret),
                   "X-Quote-Job-Id": job_id, "X-Webhook-Attempt": str(attempt)}
        error = ""
        try:
            async with session.post(job["callback_url"], data=body, headers=headers,
                                    allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    await redis.zrem(keys.webhooks, job_id)
                    await redis.hset(keys.job(job_id), mapping={"webhook_status": "delivered",
                                                                "webhook_attempts": attempt})
                    metrics.WEBHOOKS.labels(outcome="delivered").inc()
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt >= self.max_attempts:
            await self._give_up(job_id, attempt, error, outcome="gave_up")
            return
        await redis.hset(keys.job(job_id), mapping={"webhook_attempts": attempt, "webhook_error": error})
        due = now_ms() + int(backoff_delay(attempt, base=self.base, cap=self.cap) * 1000)
        await redis.zadd(keys.webhooks, {job_id: due})
        metrics.WEBHOOKS.labels(outcome="retry").inc()

    async def _give_up(self, job_id: str, attempt: int, error: str, *, outcome: str) -> None:
        redis, keys = self.queue.redis, self.queue.keys
        await redis.zrem(keys.webhooks, job_id)
        await redis.hset(keys.job(job_id), mapping={"webhook_attempts": attempt, "webhook_error": error,
                                                    "webhook_status": "failed"})
        metrics.WEBHOOKS.labels(outcome=outcome).inc()
        log.error("webhook for job %s given up after %d attempt(s): %s", job_id, attempt, error,
                  extra={"event.action": "pricing-webhook", "event.outcome": "failure"})
