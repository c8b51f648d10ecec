"""Redis key layout of the pricing queue: one prefix per shard (docs/pricing.md, "Redis layout";
docs/redis.md, "Pricing queue" for the shards)."""

from __future__ import annotations

import re
from binascii import crc_hqx
from dataclasses import dataclass

from redis.crc import key_slot

GROUP = "pricing-workers"
#: Shard numbers a job id may carry (and the most ``shards`` a deployment may configure).
MAX_SHARDS = 1024
_SHARDED_ID = re.compile(r"^(\d{1,4})-[0-9a-f]{32}$")


def base_name(prefix: str) -> str:
    """``pricing`` for the prefix ``pricing`` or ``{pricing}`` (the step-1 Cluster layout)."""
    return prefix[1:-1] if prefix.startswith("{") and prefix.endswith("}") else prefix


def shard_prefix(prefix: str, shard: int) -> str:
    """The prefix of shard ``shard``: ``{pricing:3}`` — a hash tag, so each shard is one slot."""
    return f"{{{base_name(prefix)}:{shard}}}"


def shard_of_owner(owner: str, shards: int) -> int:
    """``crc16(owner) mod shards``: an owner's jobs, price cache and idempotency keys share a shard."""
    return crc_hqx(owner.encode(), 0) % shards


def shard_of_job(job_id: str) -> int | None:
    """The shard a job id carries (``3-<32 hex>``), or None for an unsharded id (``<32 hex>``)."""
    match = _SHARDED_ID.match(job_id)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Every key name derives from ``prefix``; Lua scripts rebuild the per-job ones the same way."""

    prefix: str = "pricing"

    @property
    def one_slot(self) -> bool:
        """Every key of the queue hashes to one Redis Cluster slot (the prefix is a hash tag)."""
        return key_slot(f"{self.prefix}:stream".encode()) == key_slot(f"{self.prefix}:job:x".encode())

    @property
    def stream(self) -> str:
        """The job stream (entries carry the job id + trace context, never the model)."""
        return f"{self.prefix}:stream"

    @property
    def delayed(self) -> str:
        """ZSET job id → due time (ms) of retries waiting for their back-off."""
        return f"{self.prefix}:delayed"

    @property
    def dead(self) -> str:
        """ZSET job id → time (ms) the job was dead-lettered."""
        return f"{self.prefix}:dead"

    @property
    def workers(self) -> str:
        """ZSET worker name → last heartbeat (ms)."""
        return f"{self.prefix}:workers"

    @property
    def webhooks(self) -> str:
        """ZSET job id → when (ms) its webhook became due: the inbox the job scripts write to."""
        return f"{self.prefix}:webhooks"

    @property
    def webhook_owners(self) -> str:
        """ZSET owner → earliest due time (ms) in that owner's webhook queue (per-partner isolation)."""
        return f"{self.prefix}:webhooks:owners"

    def webhook_queue(self, owner: str) -> str:
        """ZSET job id → when (ms) its webhook is due (again), for one owner (partner or internal)."""
        return f"{self.prefix}:webhooks:owner:{owner}"

    @property
    def fair_waiting(self) -> str:
        """STRING: jobs waiting in the fair-scheduling lists, not yet in the stream (docs/pricing.md)."""
        return f"{self.prefix}:fair:waiting"

    @property
    def fair_idle(self) -> str:
        """ZSET worker → until when (ms) it waits on an empty stream (fair jobs are moved in for it)."""
        return f"{self.prefix}:fair:idle"

    @property
    def model_bytes(self) -> str:
        """STRING: bytes of every stored model together (the scripts keep it; the budget's counter)."""
        return f"{self.prefix}:models:bytes"

    def job(self, job_id: str) -> str:
        """HASH of one quote job (status, result, owner …)."""
        return f"{self.prefix}:job:{job_id}"

    def model(self, sha256: str) -> str:
        """STRING: the STL bytes, keyed by content hash, with a TTL."""
        return f"{self.prefix}:model:{sha256}"

    def idempotency(self, scope: str, key: str) -> str:
        """STRING → ``job_id|request hash`` for an ``Idempotency-Key`` of one partner (scope)."""
        return f"{self.prefix}:idem:{scope}:{key}"
