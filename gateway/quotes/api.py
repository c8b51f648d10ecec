"""The quote job API, answered by the gateway itself (route ``handler: quotes``, docs/pricing.md).

``POST {prefix}`` with an STL model → 202 + ``Location: {prefix}/{job_id}`` (200 with the price
when the same model was priced before); ``GET {prefix}/{job_id}`` → the job. The STL is parsed
before its model is stored, in a model-check process (``gateway/quotes/model_pool.py``, never in the
event loop's process), so a malformed model is a 422 and nothing is queued.
Partners see only their own jobs (another partner's id is a 404, like an unknown one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from contracts.stl import InvalidModel
from gateway.errors import GatewayError, RequestError, RequestTimeout, RouteNotFound
from gateway.quotes.config import QuotesConfig
from gateway.quotes.failover_wait import through_failover
from gateway.quotes.model_check import StlLimits
from gateway.quotes.model_pool import ModelCheckPool, PoolSettings
from gateway.quotes.upload import Upload, read_upload
from gateway.quotes.upload_budget import UploadBudget
from gateway.request_keys import PARTNER_KEY, QUOTE_OUTCOME_KEY, REQUEST_ID_KEY, ROUTE_KEY
from gateway.route_table import Route
from legacy_adapters import metrics
from legacy_adapters.callback_guard import CallbackRefused, check_callback_url
from legacy_adapters.job_view import Audience, job_json
from legacy_adapters.queue_state import probe_forever
from legacy_adapters.shards import ShardedQueue
from legacy_adapters.submit import (
    IdempotencyConflict,
    QuoteRequest,
    QuoteSubmitter,
    Submission,
    SubmitSettings,
)
from resilience.cancellation import cancel_and_wait
from sharedstate.errors import REDIS_ERRORS

log = logging.getLogger("gateway.quotes")
STOP_WITHIN = 5.0  # seconds the probe gets to stop (a cancel can be lost: resilience/cancellation.py)
_JOB_ID = re.compile(r"^(?:\d{1,4}-)?[0-9a-f]{32}$")  # <shard>-<uuid hex> with shards > 1
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class InvalidQuote(RequestError):
    """The upload or its options cannot be priced (malformed STL, unknown material …)."""

    status = 422
    title = "Unprocessable quote request"
    type_slug = "invalid-quote"


class QueueFull(GatewayError):
    """The pricing backlog is above its bound."""

    status = 503
    title = "Pricing queue full"
    type_slug = "pricing-queue-full"


class ModelStoreFull(GatewayError):
    """The stored models waiting for a worker are at their byte budget (``model_store_bytes``)."""

    status = 503
    title = "Pricing model store full"
    type_slug = "pricing-model-store-full"


class QueueUnavailable(GatewayError):
    """Redis (the pricing queue) did not answer."""

    status = 503
    title = "Pricing queue unavailable"
    type_slug = "pricing-queue-unavailable"


class QuoteService:
    """Redis queue + submitter + the queue-state probe of one gateway process."""

    def __init__(self, config: QuotesConfig, *, tracer_provider: object = None) -> None:
        self.config = config
        self.queue = ShardedQueue.from_url(config.redis_url, prefix=config.prefix, shards=config.shards,
                                           setting="quotes.redis_url")
        settings = SubmitSettings(rules_version=config.rules_version, backlog_bound=config.backlog_bound,
                                  job_ttl=config.job_ttl, model_ttl=config.model_ttl,
                                  idempotency_ttl=config.idempotency_ttl, inflight_ttl=config.inflight_ttl,
                                  model_store_bytes=config.model_store_bytes, fair_window=config.fair_window)
        self.checks = ModelCheckPool(PoolSettings(
            workers=config.parse_workers, cpu_seconds=config.parse_cpu_seconds,
            memory_bytes=config.parse_memory_bytes, timeout=config.parse_timeout,
            limits=StlLimits(ascii_max_bytes=config.ascii_max_bytes, max_triangles=config.max_triangles)))
        self.submitter = QuoteSubmitter(self.queue, settings, tracer_provider=tracer_provider)  # type: ignore[arg-type]
        self._probe: asyncio.Task[None] | None = None
        self.uploads = UploadBudget(total=config.upload_bytes, per_owner=config.upload_partner_bytes)

    async def start(self) -> None:
        """Create the consumer group if needed and start the queue probe (Redis down: later)."""
        self.checks.start()
        with contextlib.suppress(*REDIS_ERRORS):
            await self.queue.ensure_group()
        self._probe = asyncio.create_task(probe_forever(self.queue, self.config.backlog_bound,
                                                        self.config.probe_interval))

    async def aclose(self) -> None:
        """Stop the probe and close the pool."""
        if not await cancel_and_wait(self._probe, within=STOP_WITHIN):
            log.error("the pricing queue probe did not stop within %.1f s", STOP_WITHIN,
                      extra={"event.action": "pricing-probe"})
        await self.checks.aclose()
        await self.queue.aclose()

    def _callback(self, raw: str) -> str:
        if not raw:
            return ""
        try:
            check_callback_url(raw, allow_private=self.config.allow_private_callbacks)
        except CallbackRefused as refused:
            raise InvalidQuote(str(refused)) from None
        host = (urlsplit(raw).hostname or "").lower()
        allowed = self.config.callback_hosts
        if allowed and not any(host == h or host.endswith("." + h) for h in allowed):
            raise InvalidQuote(f"callback_url: host {host!r} is not on the allow-list")
        return raw

    async def submit(self, request: web.Request) -> web.Response:
        """``POST {prefix}``: the upload is read under the process's and the partner's budget of
        upload bytes (``gateway/quotes/upload_budget.py``) and an overall deadline."""
        route = request[ROUTE_KEY]
        partner = request.get(PARTNER_KEY)
        length = request.content_length
        size = length if length is not None and length <= route.max_body_bytes else route.max_body_bytes
        with self.uploads.reserve(partner.id if partner is not None else None, size):
            try:
                async with asyncio.timeout(self.config.upload_deadline):
                    upload = await read_upload(request, route)
            except TimeoutError:
                self.uploads.deadline_passed()
                raise RequestTimeout(f"the upload did not arrive within {self.config.upload_deadline:.0f} s"
                                     ) from None
            return await self._submit(request, route, upload)

    async def _submit(self, request: web.Request, route: Route, upload: Upload) -> web.Response:
        material = (upload.fields.get("material") or request.query.get("material") or "").upper()
        if material not in self.config.materials:
            raise InvalidQuote(f"material: {material or 'missing'}; one of "
                               f"{', '.join(sorted(self.config.materials))}")
        idem = request.headers.get("Idempotency-Key", "")
        if idem and not _IDEMPOTENCY_KEY.match(idem):
            raise InvalidQuote("Idempotency-Key: 1-255 visible ASCII characters")
        partner = request.get(PARTNER_KEY)
        req = QuoteRequest(model=upload.model, material=material,
                           owner=partner.id if partner is not None else "internal",
                           tier=partner.tier if partner is not None else "",
                           weight=self.config.jobs_per_turn(partner.tier) if partner is not None else 1,
                           callback_url=self._callback(upload.fields.get("callback_url")
                                                       or request.query.get("callback_url", "")),
                           idempotency_key=idem, request_id=request.get(REQUEST_ID_KEY) or "",
                           location_prefix=route.prefix.rstrip("/"))
        fingerprint: list[str] = []  # checked once, however often a failover makes the steps run

        async def steps() -> Submission:
            async with self.submitter.submission(req) as pending:  # two atomic queue steps
                sub = await pending.known()  # an idempotent replay, or a model this owner had priced
                if sub is None:  # the model check runs between the steps, never inside one
                    if not fingerprint:
                        fingerprint.append(await self._fingerprint(req.model, req.material))
                    sub = await pending.enqueue(fingerprint[0])
                return sub

        try:
            sub = await through_failover(steps, wait=self.config.failover_wait)
        except InvalidModel as exc:
            metrics.SUBMISSIONS.labels(outcome="invalid").inc()
            raise InvalidQuote(f"model: {exc}") from None
        except IdempotencyConflict as exc:
            raise InvalidQuote(f"Idempotency-Key: {exc}") from None
        except REDIS_ERRORS as exc:
            raise QueueUnavailable(f"the pricing queue is unreachable: {type(exc).__name__}",
                                   retry_after=5) from None
        metrics.SUBMISSIONS.labels(outcome=sub.outcome).inc()
        request[QUOTE_OUTCOME_KEY] = sub.outcome  # usage accounting (gateway/filters/usage.py)
        if sub.outcome == "full":
            raise QueueFull(f"{sub.backlog} jobs are waiting (bound {self.config.backlog_bound}); "
                            "try again later", retry_after=self.config.retry_after)
        if sub.outcome == "store_full":
            raise ModelStoreFull("the models waiting for pricing are at their size budget "
                                 f"({self.config.model_store_bytes} bytes); try again later",
                                 retry_after=self.config.retry_after)
        if sub.kind is not None:
            via = "cache" if sub.outcome == "cached" else "inflight"
            metrics.CACHE_HITS.labels(kind=sub.kind, via=via).inc()
        return await self._answer(request, sub.job_id, replay=sub.outcome == "replay")

    async def _fingerprint(self, model: bytes, material: str) -> str:
        return await self.checks.fingerprint(model, material=material,
                                             rules_version=self.config.rules_version)

    async def _job(self, job_id: str) -> dict[str, str] | None:
        """The job record, waiting out a failover; 503 if Redis stays unreachable."""
        try:
            return await through_failover(lambda: self.queue.job(job_id), wait=self.config.failover_wait)
        except REDIS_ERRORS as exc:
            raise QueueUnavailable(f"the pricing queue is unreachable: {type(exc).__name__}",
                                   retry_after=5) from None

    async def _answer(self, request: web.Request, job_id: str, *, replay: bool) -> web.Response:
        job = await self._job(job_id)
        if job is None:  # an idempotency key outliving its job
            raise QueueUnavailable("the job of this Idempotency-Key has expired; use a new key")
        location = f"{request[ROUTE_KEY].prefix.rstrip('/')}/{job_id}"
        body = job_json(job, location=location, audience=_audience(request))
        headers = {"Location": location}
        if replay:
            headers["Idempotent-Replayed"] = "true"
        status = 200 if body["status"] in ("done", "failed") else 202
        return web.json_response(body, status=status, headers=headers)

    async def read(self, request: web.Request, job_id: str) -> web.Response:
        """``GET {prefix}/{job_id}``: 404 for unknown ids and for other partners' jobs."""
        if not _JOB_ID.match(job_id):
            raise RouteNotFound(f"no quote job {job_id!r}")
        job = await self._job(job_id)
        partner = request.get(PARTNER_KEY)
        if job is None or (partner is not None and job.get("owner") != partner.id):
            raise RouteNotFound(f"no quote job {job_id}")
        location = f"{request[ROUTE_KEY].prefix.rstrip('/')}/{job_id}"
        return web.json_response(job_json(job, location=location, audience=_audience(request)))


def _audience(request: web.Request) -> Audience:
    """Dedup hints (``cached``, ``shared_with``) only on the internal listener: no cross-tenant oracle."""
    return "partner" if request[ROUTE_KEY].listener == "external" else "operator"


def quotes_handler(service: QuoteService) -> Handler:
    """The route handler: POST on the prefix submits, GET on ``prefix/{id}`` reads."""

    async def quotes(request: web.Request) -> web.StreamResponse:
        route = request[ROUTE_KEY]
        rest = request.path[len(route.prefix.rstrip("/")):].strip("/")
        if request.method == "POST" and not rest:
            return await service.submit(request)
        if request.method in ("GET", "HEAD") and rest and "/" not in rest:
            return await service.read(request, rest)
        raise RouteNotFound(f"no {request.method} on {request.path}")

    return quotes
