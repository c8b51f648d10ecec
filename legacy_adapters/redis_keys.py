"""Redis key layout of the pricing queue (one prefix; see docs/pricing.md, "Redis layout")."""

from __future__ import annotations

from dataclasses import dataclass

from redis.crc import key_slot

GROUP = "pricing-workers"


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
