"""Submitting a quote job: idempotency, price cache, in-flight dedup, backpressure — two queue steps.

The caller drives them, each one atomic Lua script, and checks the model in between itself::

    async with submitter.submission(request) as pending:
        answer = await pending.known()          # 1. by sha256 only
        if answer is None:
            answer = await pending.enqueue(await check_and_fingerprint(request.model))  # 2.

Step 1 tries the ``Idempotency-Key`` and the exact-bytes index (``sha256 → fingerprint``): a model
this owner had priced is answered from the cache, or attached to its running computation, without
checking it again. Otherwise the caller checks the model (a malformed one never reaches Redis) and
computes its canonical fingerprint, and step 2 caches/attaches/queues or refuses (backlog or model
store full). Two gateways racing on the same model still produce exactly one queued computation:
each step decides atomically. Nothing here calls back into the caller, so no queue step ever waits
for the model check (docs/pricing.md, "Price each distinct model once").
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from opentelemetry import trace

from legacy_adapters.queue import PricingQueue, now_ms
from legacy_adapters.shards import ShardedQueue
from telemetry.propagation import producer_span

Outcome = Literal["queued", "attached", "cached", "replay", "full", "store_full"]


class IdempotencyConflict(ValueError):
    """The ``Idempotency-Key`` was already used for a different request."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SubmitSettings:
    """Submission-side knobs (the gateway's ``quotes:`` section)."""

    rules_version: str = "1"
    backlog_bound: int = 1000
    job_ttl: int = 7 * 86400
    model_ttl: int = 6 * 3600  # upper bound: a model is deleted when its job is priced
    model_store_bytes: int = 256 << 20  # all stored models together; above it: store_full
    idempotency_ttl: int = 86400
    inflight_ttl: int = 7200
    #: > 0: fair scheduling across owners (docs/pricing.md): jobs wait in their owner's list, and a
    #: submission moves at most this many into the stream, only for workers waiting on it; 0: one FIFO
    fair_window: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class QuoteRequest:
    """One upload, already size-checked by the caller."""

    model: bytes
    material: str
    owner: str  # partner id, or "internal"
    tier: str = ""  # the partner's tier (a bounded metric label); "" for internal quotes
    weight: int = 1  # the owner's quantum in fair scheduling: jobs per turn (the gateway: by tier)
    callback_url: str = ""
    idempotency_key: str = ""
    request_id: str = ""
    location_prefix: str = ""  # the job is at f"{location_prefix}/{job_id}" (for webhooks)


@dataclass(frozen=True, slots=True)
class Submission:
    """What happened: ``job_id`` is the new job, or the earlier one on ``replay``."""

    outcome: Outcome
    job_id: str
    kind: str | None = None  # exact|geometric for cached/attached
    backlog: int = 0


def _tier(req: QuoteRequest) -> str:
    return req.tier or ("internal" if req.owner == "internal" else "other")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class QuoteSubmitter:
    """Turns a :class:`QuoteRequest` into at most one queued computation per distinct model."""

    def __init__(self, queue: PricingQueue | ShardedQueue, settings: SubmitSettings, *,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self.queue = ShardedQueue.of(queue)
        self.settings = settings
        # each shard applies its share of the bounds (docs/redis.md, "Pricing queue", step 2)
        self._per_shard = replace(settings,
                                  backlog_bound=self.queue.per_shard(settings.backlog_bound, round_up=True),
                                  model_store_bytes=self.queue.per_shard(settings.model_store_bytes,
                                                                         round_up=False))
        self._tracer_provider = tracer_provider

    @asynccontextmanager
    async def submission(self, req: QuoteRequest) -> AsyncIterator[PendingQuote]:
        """The job drafted (id, sha256, fields) inside the PRODUCER span ``pricing:stream publish``,
        whose trace context the job carries; run :meth:`PendingQuote.known`, then, if it answers
        None, check the model and run :meth:`PendingQuote.enqueue`, inside the ``async with``."""
        big = len(req.model) > 1 << 20
        sha = await asyncio.to_thread(_sha256, req.model) if big else _sha256(req.model)
        lane = self.queue.for_owner(req.owner)  # the owner's shard: its dedup and idempotency keys
        job_id = lane.new_job_id()
        request_hash = _sha256(f"{sha}|{req.material}|{req.callback_url}".encode())
        carrier: dict[str, str] = {}
        with producer_span("pricing:stream publish", carrier, {
                "messaging.system": "redis", "messaging.destination.name": lane.keys.stream,
                "messaging.message.id": job_id}, tracer_provider=self._tracer_provider):
            fields = {"id": job_id, "material": req.material, "sha256": sha, "owner": req.owner,
                      "rules_version": self.settings.rules_version, "created_at": str(now_ms()),
                      "callback_url": req.callback_url, "request_id": req.request_id,
                      "location": f"{req.location_prefix}/{job_id}",
                      "traceparent": carrier.get("traceparent", ""),
                      "tracestate": carrier.get("tracestate", ""), "tier": _tier(req)}
            if self.settings.fair_window > 0:
                fields |= {"fair": "1", "weight": str(max(1, req.weight))}
            idem = lane.keys.idempotency(req.owner, req.idempotency_key) if req.idempotency_key else ""
            yield PendingQuote(lane, self._per_shard, req, fields, idem=idem,
                               request_hash=request_hash)


class PendingQuote:
    """One drafted submission and its two queue steps (from :meth:`QuoteSubmitter.submission`)."""

    def __init__(self, queue: PricingQueue, settings: SubmitSettings, req: QuoteRequest,
                 fields: dict[str, str], *, idem: str, request_hash: str) -> None:
        self._queue, self._settings, self._req, self._fields = queue, settings, req, fields
        self._idem, self._request_hash = idem, request_hash

    async def known(self) -> Submission | None:
        """Step 1, by sha256 only: an ``Idempotency-Key`` replay, or a model this owner had priced
        (``cached``) or has in flight (``attached``); None: check the model, then :meth:`enqueue`.
        Raises :class:`IdempotencyConflict` for a key used with another request."""
        answer = await self._step("", b"")
        return None if answer.outcome == "miss" else _submission(answer, self._request_hash)

    async def enqueue(self, fingerprint: str) -> Submission:
        """Step 2, for a model that passed its check: ``fingerprint`` is its canonical fingerprint
        (:func:`legacy_adapters.fingerprint.fingerprint`); dedup is scoped to the owner here."""
        fp = f"{self._req.owner}:{fingerprint}"  # no cross-tenant oracle (docs/pricing.md)
        return _submission(await self._step(fp, self._req.model), self._request_hash)

    async def _step(self, fp: str, model: bytes) -> _Answer:
        s, job_id = self._settings, self._fields["id"]
        pairs: list[Any] = [x for kv in self._fields.items() for x in kv]
        outcome, detail = await self._queue.run(
            "SUBMIT", job_id, fp, s.backlog_bound, self._fields["created_at"], self._idem,
            f"{job_id}|{self._request_hash}", s.idempotency_ttl, s.job_ttl, s.inflight_ttl, s.model_ttl,
            s.model_store_bytes, model, s.fair_window, *pairs)
        return _Answer(outcome.decode(), detail.decode(), job_id)


@dataclass(frozen=True, slots=True)
class _Answer:
    outcome: str
    detail: str
    job_id: str


def _submission(answer: _Answer, request_hash: str) -> Submission:
    if answer.outcome == "replay":
        job_id, _, earlier_hash = answer.detail.partition("|")
        if earlier_hash != request_hash:
            raise IdempotencyConflict("this Idempotency-Key was used for a different model, "
                                      "material or callback_url")
        return Submission("replay", job_id)
    if answer.outcome == "full":
        return Submission("full", answer.job_id, backlog=int(answer.detail))
    if answer.outcome == "store_full":
        return Submission("store_full", answer.job_id)
    kind = answer.detail or None
    return Submission(answer.outcome, answer.job_id, kind)  # type: ignore[arg-type]
