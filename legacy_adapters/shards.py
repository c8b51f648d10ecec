"""The pricing queue over ``S`` shards (docs/redis.md, "Pricing queue", step 2).

Each shard is one :class:`PricingQueue` layout under the prefix ``{<name>:<s>}`` — a hash tag, so
every script of a shard touches one Redis Cluster slot, and the shards spread over the primaries.
An owner (partner id, or ``internal``) always lands on shard ``crc16(owner) mod S``: ``SUBMIT``
sees the owner's idempotency keys, price cache and in-flight markers in the shard it queues to.
Job ids carry their shard (``<s>-<uuid hex>``), so a read needs no lookup. With ``S = 1`` (the
default) the one shard *is* the unsharded layout under the prefix itself (``pricing:…``, plain
ids): nothing changes. With ``S > 1`` the unsharded (step-1) layout is still read — job reads by
plain ids, workers, probe and dead letters while its stream exists — so a queue moves to shards
without draining it first.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from configkit import check
from legacy_adapters.queue import PricingQueue
from legacy_adapters.redis_keys import (
    MAX_SHARDS,
    QueueKeys,
    shard_of_job,
    shard_of_owner,
    shard_prefix,
)
from sharedstate.redis_spec import AnyRedis, parse_redis_spec

__all__ = ["ShardedQueue"]


@dataclass(frozen=True, slots=True)
class _Layout:
    home: PricingQueue  # the prefix itself: heartbeats; the one shard when S = 1
    shards: tuple[PricingQueue, ...]
    base: PricingQueue | None  # the step-1 layout still read when S > 1 (None: not readable here)


class ShardedQueue:
    """Routes by owner (submissions) and by job id (reads); lists the layouts workers serve."""

    def __init__(self, client: AnyRedis, prefix: str = "pricing", *, shards: int = 1,
                 read_base: bool = True) -> None:
        check(1 <= shards <= MAX_SHARDS, "shards", f"must be between 1 and {MAX_SHARDS}, got {shards}")
        name = prefix.strip("{}")
        check(shards == 1 or ("{" not in name and "}" not in name), "prefix",
              f"with shards > 1 the prefix names the queue ('pricing' or '{{pricing}}'), got {prefix!r}")
        home = PricingQueue(client, QueueKeys(prefix))
        if shards == 1:
            self._layout = _Layout(home, (home,), None)
        else:
            lanes = tuple(PricingQueue(client, QueueKeys(shard_prefix(prefix, s)), shard=s)
                          for s in range(shards))
            self._layout = _Layout(home, lanes, home if read_base else None)
        self.redis = client
        self._others: dict[int, PricingQueue] = {}

    @classmethod
    def of(cls, queue: PricingQueue | ShardedQueue) -> ShardedQueue:
        """``queue`` itself, or one unsharded layout seen as a queue of one shard."""
        if isinstance(queue, ShardedQueue):
            return queue
        single = cls.__new__(cls)
        single._layout = _Layout(queue, (queue,), None)
        single.redis = queue.redis
        single._others = {}
        return single

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "pricing", shards: int = 1,
                 setting: str = "redis_url") -> ShardedQueue:
        """A queue on its own connection pool (binary-safe: models are bytes). On Redis Cluster a
        single shard needs the prefix as a hash tag (``{pricing}``); with ``shards > 1`` each shard
        is tagged anyway, and an untagged prefix's unsharded layout cannot be on the cluster."""
        spec = parse_redis_spec(url, setting)
        one_slot = QueueKeys(prefix).one_slot
        check(spec.kind != "cluster" or one_slot or shards > 1, setting,
              f"Redis Cluster needs the pricing prefix as a hash tag, e.g. '{{{prefix}}}', or shards > 1 "
              f"(docs/redis.md, Pricing queue), got {prefix!r}")
        # on a Cluster, a call to a dead node fails after one retry instead of ten (redis-py's default,
        # seconds of re-reading the slot map): the workers retry per shard themselves (lanes.py)
        options = {"retry": Retry(ExponentialWithJitterBackoff(base=0.01, cap=1.0), 1)} \
            if spec.kind == "cluster" else {}
        return cls(spec.client(decode_responses=False, **options), prefix, shards=shards,
                   read_base=spec.kind != "cluster" or one_slot)

    @property
    def keys(self) -> QueueKeys:
        """The prefix's own keys (the workers' heartbeats; with one shard, every key of the queue)."""
        return self._layout.home.keys

    @property
    def shards(self) -> tuple[PricingQueue, ...]:
        """Every shard, numbered by position."""
        return self._layout.shards

    @property
    def shard_count(self) -> int:
        """``S``."""
        return len(self._layout.shards)

    def per_shard(self, total: int, *, round_up: bool) -> int:
        """A bound of the whole queue as each shard applies it (``backlog_bound``: rounded up, so
        no shard refuses everything; ``model_store_bytes``: down, so the total holds)."""
        return -(-total // self.shard_count) if round_up else total // self.shard_count

    def for_owner(self, owner: str) -> PricingQueue:
        """The shard an owner's submissions go to."""
        shards = self._layout.shards
        return shards[shard_of_owner(owner, len(shards))] if len(shards) > 1 else shards[0]

    def for_job(self, job_id: str) -> PricingQueue | None:
        """The layout holding ``job_id``: the shard in the id, else the unsharded layout (None: no
        layout can hold it). A shard beyond ``S`` (ids of a larger ``S`` before) is still readable."""
        shard = shard_of_job(job_id)
        if shard is None:
            return self._layout.shards[0] if self.shard_count == 1 else self._layout.base
        if shard >= MAX_SHARDS:
            return None
        if shard < self.shard_count and self._layout.shards[shard].shard == shard:
            return self._layout.shards[shard]
        if shard not in self._others:
            self._others[shard] = PricingQueue(self.redis, QueueKeys(shard_prefix(self.keys.prefix, shard)),
                                               shard=shard)
        return self._others[shard]

    async def job(self, job_id: str) -> dict[str, str] | None:
        """The job's fields as text (``None`` when unknown, expired or not of any layout here)."""
        lane = self.for_job(job_id)
        return None if lane is None else await lane.job(job_id)

    async def requeue(self, job_id: str, inflight_ttl: int = 7200) -> str:
        """Operator re-queue in the job's own layout (``missing`` when no layout holds it)."""
        lane = self.for_job(job_id)
        return "missing" if lane is None else await lane.requeue(job_id, inflight_ttl)

    async def lanes(self) -> list[PricingQueue]:
        """The layouts to serve: every shard, and the unsharded layout while its stream exists."""
        base = self._layout.base
        return [*self._layout.shards, *([base] if base is not None and await base.exists() else [])]

    async def ensure_group(self) -> None:
        """Create every shard's stream and consumer group (never the old layout's: it drains)."""
        for lane in self._layout.shards:
            await lane.ensure_group()

    async def dead_jobs(self) -> list[str]:
        """Ids in every layout's dead-letter set (each oldest first)."""
        return [job_id for lane in await self.lanes() for job_id in await lane.dead_jobs()]

    async def heartbeat(self, worker: str) -> None:
        """Say this worker is alive (one set for every shard)."""
        await self._layout.home.heartbeat(worker)

    async def leave(self, worker: str) -> None:
        """Graceful exit: the heartbeat, and this consumer in every layout where it holds nothing."""
        await self._layout.home.leave(worker)
        for lane in self._layout.shards:
            if lane is not self._layout.home:
                await lane.leave_group(worker)

    async def aclose(self) -> None:
        """Close the connection pool (one for every shard)."""
        await self.redis.aclose()
