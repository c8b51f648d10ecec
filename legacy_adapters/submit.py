"""Submitting a quote job: idempotency, price cache, in-flight dedup, backpressure — one script.

Two round trips at most. The first tries the exact-bytes index (``sha256 → fingerprint``): a
model seen before is answered from the cache, or attached to the running computation, without
parsing it again. Otherwise the caller parses the STL (a malformed model never reaches Redis),
the canonical fingerprint is computed and the second call caches/attaches/queues or refuses
(backlog full). Each call is one atomic Lua script, so two gateways racing on the same model
still produce exactly one queued computation.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from opentelemetry import trace

from legacy_adapters.fingerprint import fingerprint
from legacy_adapters.queue import PricingQueue, now_ms
from telemetry.propagation import producer_span

Outcome = Literal["queued", "attached", "cached", "replay", "full", "store_full"]
#: ``(model bytes, material) -> fingerprint``, e.g. computed in a model-check process.
Fingerprinter = Callable[[bytes, str], Awaitable[str]]


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


@dataclass(frozen=True, kw_only=True, slots=True)
class QuoteRequest:
    """One upload, already size-checked by the caller."""

    model: bytes
    material: str
    owner: str  # partner id, or "internal"
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class QuoteSubmitter:
    """Turns a :class:`QuoteRequest` into at most one queued computation per distinct model."""

    def __init__(self, queue: PricingQueue, settings: SubmitSettings, *,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self.queue = queue
        self.settings = settings
        self._tracer_provider = tracer_provider

    async def submit(self, req: QuoteRequest, *, parse: Callable[[bytes], np.ndarray] | None = None,
                     fingerprint_of: Fingerprinter | None = None) -> Submission:
        """``parse`` turns STL bytes into (n, 3, 3) triangles and raises for malformed models (run
        on a thread here); ``fingerprint_of`` instead does parse + fingerprint elsewhere."""
        big = len(req.model) > 1 << 20
        sha = await asyncio.to_thread(_sha256, req.model) if big else _sha256(req.model)
        job_id = uuid.uuid4().hex
        request_hash = _sha256(f"{sha}|{req.material}|{req.callback_url}".encode())
        carrier: dict[str, str] = {}
        with producer_span("pricing:stream publish", carrier, {
                "messaging.system": "redis", "messaging.destination.name": self.queue.keys.stream,
                "messaging.message.id": job_id}, tracer_provider=self._tracer_provider):
            fields = {"id": job_id, "material": req.material, "sha256": sha, "owner": req.owner,
                      "rules_version": self.settings.rules_version, "created_at": str(now_ms()),
                      "callback_url": req.callback_url, "request_id": req.request_id,
                      "location": f"{req.location_prefix}/{job_id}",
                      "traceparent": carrier.get("traceparent", ""),
                      "tracestate": carrier.get("tracestate", "")}
            idem = (self.queue.keys.idempotency(req.owner, req.idempotency_key)
                    if req.idempotency_key else "")
            first = await self._run(fields, "", idem, f"{job_id}|{request_hash}", b"")
            if first.outcome != "miss":
                return self._check_replay(first, request_hash)
            if fingerprint_of is not None:
                fp = await fingerprint_of(req.model, req.material)
            elif parse is not None:
                triangles = await asyncio.to_thread(parse, req.model)
                fp = await asyncio.to_thread(fingerprint, triangles, material=req.material,
                                             rules_version=self.settings.rules_version)
            else:
                raise TypeError("submit() needs parse or fingerprint_of")
            fp = f"{req.owner}:{fp}"  # dedup per owner: no cross-tenant oracle (docs/pricing.md)
            second = await self._run(fields, fp, idem, f"{job_id}|{request_hash}", req.model)
            return self._check_replay(second, request_hash)

    async def _run(self, fields: dict[str, str], fp: str, idem: str, idem_value: str,
                   model: bytes) -> _Answer:
        s = self.settings
        pairs: list[Any] = [x for kv in fields.items() for x in kv]
        outcome, detail = await self.queue.run(
            "SUBMIT", fields["id"], fp, s.backlog_bound, fields["created_at"], idem, idem_value,
            s.idempotency_ttl, s.job_ttl, s.inflight_ttl, s.model_ttl, s.model_store_bytes, model, *pairs)
        return _Answer(outcome.decode(), detail.decode(), fields["id"])

    @staticmethod
    def _check_replay(answer: _Answer, request_hash: str) -> Submission:
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


@dataclass(frozen=True, slots=True)
class _Answer:
    outcome: str
    detail: str
    job_id: str
