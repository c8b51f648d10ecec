"""Legacy CRM: validate an order, XADD it to ``crm:orders`` (envelope v1), remember it in a hash.

Delivery statuses come back on ``crm:orders:status`` (:mod:`contracts.crm_status`); the status
intake task applies them, so ``GET /orders/{id}`` shows ``DELIVERED`` and the MES order id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from opentelemetry.trace import TracerProvider

from legacy_sim.crm.intake import ORDER_KEY_PREFIX, submit_order
from legacy_sim.crm.state import CRM_CONFIG, REDIS, TRACING, CrmConfig, Tracing
from legacy_sim.crm.status_intake import StatusIntake
from legacy_sim.http_context import request_context_middleware
from legacy_sim.problem import Problem, problem_middleware, problem_response
from sharedstate.redis_spec import parse_redis_spec
from telemetry import default_route_name, metrics_handler, server_span_filter


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def get_order(request: web.Request) -> web.Response:
    """What the CRM knows about one of its orders (404 if unknown)."""
    crm_order_id = request.match_info["crm_order_id"]
    raw = await request.app[REDIS].hgetall(ORDER_KEY_PREFIX + crm_order_id[:100])
    if not raw:
        raise Problem(404, f"CRM order {crm_order_id[:100]!r} not found")
    record = {_text(k): _text(v) for k, v in raw.items()}
    answer: dict[str, object] = {"crm_order_id": crm_order_id, "status": record["status"],
                                 "submitted_at": record["submitted_at"]}
    if "mes_order_id" in record:  # DELIVERED: the MES has it under this id (crm:orders:status)
        answer.update(mes_order_id=int(record["mes_order_id"]), delivered_at=record.get("delivered_at"))
    answer["order"] = json.loads(record["payload"])
    return web.json_response(answer)


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


async def _stop_intake(intake: StatusIntake, task: asyncio.Task[None], *, bound: float) -> None:
    """Ask the intake to stop (its read ends within ``block_ms``); cancel it only if it has not
    after ``bound`` seconds (a socket timeout), and never wait for it longer than that again."""
    intake.stop()
    done, _ = await asyncio.wait({task}, timeout=bound)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=bound)


def build_crm_app(config: CrmConfig, *, tracer_provider: TracerProvider | None = None) -> web.Application:
    """The CRM stand-in app (one Redis client, closed on shutdown).

    Spans go to ``tracer_provider`` (tests: an in-memory exporter), default the global provider
    installed by ``telemetry.setup_tracing``; with neither, tracing costs nothing.
    """
    app = web.Application(middlewares=[
        request_context_middleware(),
        server_span_filter(route_name=default_route_name, tracer_provider=tracer_provider),
        problem_middleware("legacy CRM"),
    ])
    app[CRM_CONFIG] = config
    app[TRACING] = Tracing(tracer_provider)

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        client = parse_redis_spec(config.redis_url, "--redis-url").client(
            socket_timeout=config.health_timeout_s * 5, socket_connect_timeout=config.health_timeout_s)
        app[REDIS] = client
        intake, task = None, None
        if config.status_stream:
            intake = StatusIntake(client, stream=config.status_stream)
            task = asyncio.get_running_loop().create_task(intake.run(), name="crm-status-intake")
        try:
            yield
        finally:
            if intake is not None and task is not None:
                await _stop_intake(intake, task, bound=config.health_timeout_s * 5 + 2)
            await client.aclose()

    app.cleanup_ctx.append(redis_ctx)
    app.router.add_get("/", info)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler())
    app.router.add_post("/orders", submit_order)
    app.router.add_get("/orders/{crm_order_id}", get_order)
    return app
