"""Job-finished webhooks: HMAC-signed POST to the job's ``callback_url``, retried with back-off.

Any worker delivers them: a finished job's id is put in a due-time ZSET by the same script that
records the outcome; a worker leases the next due id (so a crash mid-delivery only delays it),
POSTs the job's JSON with ``X-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` and either
forgets it (2xx) or schedules another try. Receivers must accept duplicates (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging

import aiohttp

from legacy_adapters import metrics
from legacy_adapters.backoff import backoff_delay
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
                 cap: float = 600.0, timeout: float = 10.0, lease_ms: int = 60_000) -> None:
        self.queue = queue
        self.secret = secret
        self.max_attempts = max_attempts
        self.base, self.cap = base, cap
        self.lease_ms = lease_ms
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the due set every 0.5 s while idle."""
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
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
        body = json.dumps(job_json(job, location=job.get("location", ""))).encode()
        attempt = int(job.get("webhook_attempts") or 0) + 1
        headers = {"Content-Type": "application/json", "X-Signature": sign(body, self.secret),
                   "X-Quote-Job-Id": job_id, "X-Webhook-Attempt": str(attempt)}
        error = ""
        try:
            async with session.post(job["callback_url"], data=body, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    await redis.zrem(keys.webhooks, job_id)
                    await redis.hset(keys.job(job_id), mapping={"webhook_status": "delivered",
                                                                "webhook_attempts": attempt})
                    metrics.WEBHOOKS.labels(outcome="delivered").inc()
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        await redis.hset(keys.job(job_id), mapping={"webhook_attempts": attempt, "webhook_error": error})
        if attempt >= self.max_attempts:
            await redis.zrem(keys.webhooks, job_id)
            await redis.hset(keys.job(job_id), "webhook_status", "failed")
            metrics.WEBHOOKS.labels(outcome="gave_up").inc()
            log.error("webhook for job %s given up after %d attempts: %s", job_id, attempt, error,
                      extra={"event.action": "pricing-webhook", "event.outcome": "failure"})
            return
        due = now_ms() + int(backoff_delay(attempt, base=self.base, cap=self.cap) * 1000)
        await redis.zadd(keys.webhooks, {job_id: due})
        metrics.WEBHOOKS.labels(outcome="retry").inc()
