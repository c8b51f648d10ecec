"""Python face of the queue scripts: every state change of a quote job goes through here.

That includes its webhook: claiming a due one and settling an attempt (delivered, retry at a due
time, given up) change the job's ``webhook_*`` fields and its place in the per-owner webhook
schedule in one script. ``tests/unit/legacy_adapters/test_queue_owns_job_state.py`` checks that no
other module writes the queue's keys.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from redis.exceptions import ResponseError

from configkit import check
from legacy_adapters import scripts
from legacy_adapters.redis_keys import GROUP, QueueKeys
from sharedstate.redis_spec import AnyRedis, parse_redis_spec

__all__ = ["PricingQueue", "now_ms"]


def now_ms() -> int:
    """Wall-clock milliseconds (stream ids, scores and job timestamps use them)."""
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(raw: Any) -> tuple[str, Mapping[str, str]]:
    """A stream entry as a script returns it: ``[id, [field, value, …]]``."""
    eid, flat = raw
    return _text(eid), {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


class PricingQueue:
    """One layout of the queue (one prefix): Redis Streams + consumer group ``pricing-workers``; the
    scripts keep every step atomic. A deployment with ``shards > 1`` has one per shard
    (:class:`legacy_adapters.shards.ShardedQueue`); ``shard`` is then its number, carried by its job
    ids (``None``: the unsharded layout, plain ids)."""

    def __init__(self, client: AnyRedis, keys: QueueKeys | None = None, *, shard: int | None = None) -> None:
        self.redis = client
        self.keys = keys or QueueKeys()
        self.shard = shard
        self._scripts = {name: client.register_script(getattr(scripts, name))
                         for name in ("SUBMIT", "START", "COMPLETE", "RETRY", "DEAD_LETTER", "HANDBACK",
                                      "PROMOTE", "EXTEND", "REQUEUE", "CLAIM", "FAIR_OLDEST", "WEBHOOK_CLAIM",
                                      "WEBHOOK_SETTLE")}

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "pricing", setting: str = "redis_url") -> PricingQueue:
        """A queue on its own connection pool (binary-safe: models are bytes); ``url`` is any Redis
        spec (``sharedstate.redis_spec``), ``setting`` names it in a ConfigError. On Redis Cluster the
        scripts' keys must share one slot, so the prefix must be a hash tag (``{pricing}``)."""
        spec = parse_redis_spec(url, setting)
        keys = QueueKeys(prefix)
        check(spec.kind != "cluster" or keys.one_slot, setting,
              f"Redis Cluster needs the pricing prefix as a hash tag, e.g. '{{{prefix}}}' "
              f"(docs/redis.md, Pricing queue), got {prefix!r}")
        return cls(spec.client(decode_responses=False), keys)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    def new_job_id(self) -> str:
        """A fresh job id of this layout: ``<shard>-<uuid hex>``, or the plain uuid hex unsharded."""
        return uuid.uuid4().hex if self.shard is None else f"{self.shard}-{uuid.uuid4().hex}"

    async def run(self, name: str, *args: Any) -> Any:
        """Run script ``name`` with ARGV = (prefix, group, *args).

        The scripts build their keys from the prefix; the stream is declared as KEYS[1] (unused by
        the scripts) so a cluster client sends the call to the node of the prefix's slot."""
        return await self._scripts[name](keys=[self.keys.stream], args=[self.keys.prefix, GROUP, *args])

    async def ensure_group(self) -> None:
        """Create the stream and consumer group (from id 0: nothing queued before is lost)."""
        try:
            await self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def job(self, job_id: str) -> dict[str, str] | None:
        """The job's fields as text (``None`` when unknown or expired)."""
        raw = await self.redis.hgetall(self.keys.job(job_id))
        return {_text(k): _text(v) for k, v in raw.items()} if raw else None

    async def model(self, sha256: str) -> bytes | None:
        """The stored model bytes (``None`` after their TTL)."""
        data = await self.redis.get(self.keys.model(sha256))
        return data if isinstance(data, bytes) else None

    async def start(self, job_id: str, entry: str, worker: str) -> tuple[str, int]:
        """Mark running and count the attempt; returns (status before, attempt number)."""
        status, attempts = await self.run("START", job_id, entry, worker, now_ms())
        return _text(status), int(attempts)

    async def complete(self, job_id: str, entry: str, result_json: str, cache_ttl: int) -> tuple[bool, int]:
        """Record the result once (False if it was already recorded) and resolve followers."""
        applied, followers = await self.run("COMPLETE", job_id, entry, result_json, now_ms(), cache_ttl)
        return bool(applied), int(followers)

    async def retry(self, job_id: str, entry: str, error: str, delay: float) -> None:
        """Ack the entry and park the job in the delayed set for ``delay`` seconds."""
        await self.run("RETRY", job_id, entry, error, now_ms() + int(delay * 1000))

    async def dead_letter(self, job_id: str, entry: str, reason: str) -> None:
        """Give up on the job: status failed, reason kept, in the dead-letter set."""
        await self.run("DEAD_LETTER", job_id, entry, reason, now_ms())

    async def hand_back(self, job_id: str, entry: str) -> bool:
        """Re-enqueue an unfinished job at once (graceful shutdown)."""
        return bool(await self.run("HANDBACK", job_id, entry))

    async def promote_due(self, limit: int = 100) -> int:
        """Move retries whose back-off has passed back into the stream."""
        return int(await self.run("PROMOTE", now_ms(), limit))

    async def claim(self, consumer: str, count: int, idle_ms: int = 0
                    ) -> tuple[list[tuple[str, Mapping[str, str]]], int]:
        """Up to ``count`` entries for ``consumer`` at once: unread ones, then fairly scheduled jobs
        moved from the per-owner lists (operators first, then partners by deficit round robin) and
        read in the same script. Nothing found and ``idle_ms`` > 0: registered as waiting that long,
        so a submission moves its job in (the caller blocks on :meth:`read` next). Returns (entries,
        jobs still listed)."""
        got, waiting = await self.run("CLAIM", consumer, count, idle_ms)
        return [_entry(e) for e in got], int(waiting)

    async def oldest_listed_ms(self) -> int | None:
        """When (ms) the longest-waiting job in a fair-scheduling list was listed (None: none listed)."""
        answer = await self.run("FAIR_OLDEST")
        return int(answer) if answer else None

    async def extend(self, entry: str, consumer: str) -> bool:
        """Reset the idle time of our entry; False when another worker reclaimed it."""
        return bool(await self.run("EXTEND", entry, consumer))

    async def requeue(self, job_id: str, inflight_ttl: int = 7200) -> str:
        """Operator re-queue; returns missing|done|no_model|cached|attached|queued."""
        (outcome,) = await self.run("REQUEUE", job_id, now_ms(), inflight_ttl)
        return _text(outcome)

    async def claim_webhook(self, lease_ms: int, busy: Collection[str] = (), *,
                            inbox_batch: int = 100) -> tuple[str, str] | None:
        """Lease the next due webhook of an owner not in ``busy``: (job id, owner), or None."""
        answer = await self.run("WEBHOOK_CLAIM", now_ms(), lease_ms, inbox_batch, *busy)
        return (_text(answer[0]), _text(answer[1])) if answer else None

    async def webhook_delivered(self, job_id: str, owner: str, attempt: int) -> None:
        """The receiver answered 2xx: recorded on the job, the webhook forgotten."""
        await self.run("WEBHOOK_SETTLE", job_id, owner, "",
                       "webhook_status", "delivered", "webhook_attempts", attempt)

    async def webhook_retry(self, job_id: str, owner: str, attempt: int, error: str, due_ms: int) -> None:
        """The attempt failed: recorded on the job, the webhook due again at ``due_ms``."""
        await self.run("WEBHOOK_SETTLE", job_id, owner, due_ms,
                       "webhook_attempts", attempt, "webhook_error", error)

    async def webhook_gave_up(self, job_id: str, owner: str, attempt: int, error: str) -> None:
        """No more attempts: ``webhook_status: failed`` on the job, the webhook forgotten."""
        await self.run("WEBHOOK_SETTLE", job_id, owner, "",
                       "webhook_attempts", attempt, "webhook_error", error, "webhook_status", "failed")

    async def drop_webhook(self, job_id: str, owner: str) -> None:
        """Nothing to deliver (the job expired or has no ``callback_url``): forget the webhook."""
        await self.run("WEBHOOK_SETTLE", job_id, owner, "")

    async def dead_jobs(self) -> list[str]:
        """Ids in the dead-letter set, oldest first."""
        return [_text(i) for i in await self.redis.zrange(self.keys.dead, 0, -1)]

    async def read(self, consumer: str, count: int, block_ms: int | None
                   ) -> list[tuple[str, Mapping[str, str]]]:
        """New entries for ``consumer`` (XREADGROUP >; ``block_ms`` None: answer at once)."""
        answer: Any = await self.redis.xreadgroup(GROUP, consumer, {self.keys.stream: ">"},
                                                  count=count, block=block_ms)
        got: list[tuple[str, Mapping[str, str]]] = [
            (_text(eid), {_text(k): _text(v) for k, v in fields.items()})
            for _stream, entries in answer or [] for eid, fields in entries]
        if got and block_ms is not None:  # woken: no longer waiting for a job moved in (CLAIM)
            await self.redis.zrem(self.keys.fair_idle, consumer)
        return got

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int, *, start: str = "0-0"
                      ) -> tuple[list[tuple[str, Mapping[str, str]]], str]:
        """Entries idle longer than the visibility timeout (their worker died): XAUTOCLAIM from
        ``start``; returns them and the cursor to start from next time (``0-0``: scanned to the end)."""
        answer: Any = await self.redis.xautoclaim(self.keys.stream, GROUP, consumer, min_idle_ms,
                                                  start_id=start, count=count)
        return ([(_text(eid), {_text(k): _text(v) for k, v in fields.items()})
                 for eid, fields in answer[1] if fields], _text(answer[0]))

    async def heartbeat(self, worker: str) -> None:
        """Say this worker is alive (the gateway's ``pricing_workers_alive`` counts these)."""
        await self.redis.zadd(self.keys.workers, {worker: now_ms()})

    async def leave(self, worker: str) -> None:
        """Graceful exit: forget the heartbeat and the consumer (when it holds no entries)."""
        await self.redis.zrem(self.keys.workers, worker)
        await self.leave_group(worker)

    async def leave_group(self, worker: str) -> None:
        """Forget the consumer ``worker`` of this layout's group when it holds no entries."""
        await self.redis.zrem(self.keys.fair_idle, worker)
        try:
            pending = await self.redis.xpending_range(self.keys.stream, GROUP, min="-", max="+", count=1,
                                                      consumername=worker)
        except ResponseError as exc:  # no stream or group here (an old layout already removed)
            if "NOGROUP" in str(exc):
                return
            raise
        if not pending:
            await self.redis.xgroup_delconsumer(self.keys.stream, GROUP, worker)

    async def exists(self) -> bool:
        """Whether this layout's stream exists (the step-1 layout is read only while it does)."""
        return bool(await self.redis.exists(self.keys.stream))
