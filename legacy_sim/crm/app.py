"""Legacy CRM: validate an order, XADD it to ``crm:orders`` (envelope v1), remember it in a hash."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from legacy_sim.crm_envelope import STREAM, TRACEPARENT, CrmOrderMessage, utc_now_iso
from legacy_sim.events import log_event, since_ns
from legacy_sim.order_input import InvalidOrder, parse_new_order
from legacy_sim.problem import Problem, invalid_field, problem_middleware, problem_response
from legacy_sim.request_body import read_json_object

logger = logging.getLogger("legacy_sim.crm")

ORDER_SEQUENCE_KEY = "crm:order_seq"
ORDER_KEY_PREFIX = "crm:order:"


@dataclass(frozen=True, kw_only=True, slots=True)
class CrmConfig:
    """Settings of the CRM stand-in."""

    redis_url: str
    stream: str = STREAM
    max_json_bytes: int = 64 * 1024
    health_timeout_s: float = 1.0


CRM_CONFIG = web.AppKey("crm_config", CrmConfig)
REDIS = web.AppKey("crm_redis", aioredis.Redis)


async def submit_order(request: web.Request) -> web.Response:
    """Accept an order: 202 ``{crm_order_id, status: "QUEUED"}`` once it is on the stream."""
    started = time.perf_counter_ns()
    config, client = request.app[CRM_CONFIG], request.app[REDIS]
    body = await read_json_object(request, config.max_json_bytes)
    try:
        order = parse_new_order(body, allow_external_ref=False)
    except InvalidOrder as exc:
        raise invalid_field(exc.field, exc.reason) from None
    crm_order_id = f"CRM-{await client.incr(ORDER_SEQUENCE_KEY):08d}"
    traceparent = request.headers.get("traceparent", "").strip().lower()
    message = CrmOrderMessage(crm_order_id=crm_order_id, order=order, submitted_at=utc_now_iso(),
                              traceparent=traceparent if TRACEPARENT.match(traceparent) else None,
                              tracestate=request.headers.get("tracestate"))
    fields = message.to_fields()
    async with client.pipeline(transaction=True) as pipe:
        pipe.xadd(config.stream, fields)  # type: ignore[arg-type]
        pipe.hset(ORDER_KEY_PREFIX + crm_order_id, mapping={
            "status": "QUEUED", "payload": fields["payload"], "submitted_at": message.submitted_at})
        entry_id, _ = await pipe.execute()
    entry = _text(entry_id)
    log_event(logger, f"CRM order {crm_order_id} queued as {entry}", action="crm-queue-write",
              duration_ns=since_ns(started),
              fields={"crm.order_id": crm_order_id, "messaging.message.id": entry,
                      "messaging.destination.name": config.stream})
    return web.json_response({"crm_order_id": crm_order_id, "status": "QUEUED"}, status=202,
                             headers={"Location": f"/orders/{crm_order_id}"})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def get_order(request: web.Request) -> web.Response:
    """What the CRM knows about one of its orders (404 if unknown)."""
    crm_order_id = request.match_info["crm_order_id"]
    raw = await request.app[REDIS].hgetall(ORDER_KEY_PREFIX + crm_order_id[:100])
    if not raw:
        raise Problem(404, f"CRM order {crm_order_id[:100]!r} not found")
    record = {_text(k): _text(v) for k, v in raw.items()}
    return web.json_response({"crm_order_id": crm_order_id, "status": record["status"],
                              "submitted_at": record["submitted_at"], "order": json.loads(record["payload"])})


async def healthz(request: web.Request) -> web.Response:
    """200 when Redis answers PING within the health timeout, else 503."""
    client, config = request.app[REDIS], request.app[CRM_CONFIG]
    try:
        async with asyncio.timeout(config.health_timeout_s):
            await client.ping()
    except (OSError, TimeoutError, aioredis.ConnectionError, aioredis.TimeoutError) as exc:
        return problem_response(503, f"redis unreachable: {exc.__class__.__name__}",
                                headers={"Retry-After": "5"})
    return web.json_response({"status": "ok"})


async def info(request: web.Request) -> web.Response:
    """Small self-description."""
    return web.json_response({"service": "legacy-crm", "stream": request.app[CRM_CONFIG].stream})


def build_crm_app(config: CrmConfig) -> web.Application:
    """The CRM stand-in app (one Redis client, closed on shutdown)."""
    app = web.Application(middlewares=[problem_middleware("legacy CRM")])
    app[CRM_CONFIG] = config

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(config.redis_url, socket_timeout=config.health_timeout_s * 5,
                                         socket_connect_timeout=config.health_timeout_s)
        app[REDIS] = client
        try:
            yield
        finally:
            await client.aclose()

    app.cleanup_ctx.append(redis_ctx)
    app.router.add_get("/", info)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/orders", submit_order)
    app.router.add_get("/orders/{crm_order_id}", get_order)
    return app
