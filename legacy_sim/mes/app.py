"""Assemble one legacy MES instance: routes, error mapping, database pool, optional CRM consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import TracerProvider

from legacy_sim.http_context import request_context_middleware
from legacy_sim.mes import orders_api, pricing_api
from legacy_sim.mes.config import MesConfig
from legacy_sim.mes.crm_consumer import ConsumerConfig, CrmConsumer
from legacy_sim.mes.db import database_ok, open_pool
from legacy_sim.mes.pricing_service import PricingService, close_abandoned_calculations
from legacy_sim.mes.state import MES_STATE, MesState, state_of
from legacy_sim.problem import problem_middleware, problem_response
from telemetry import default_route_name, metrics_handler, server_span_filter

logger = logging.getLogger("legacy_sim.mes")

CRM_CONSUMER = web.AppKey("crm_consumer", CrmConsumer)
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers within the health timeout, else 503."""
    state = state_of(request)
    if await database_ok(state.pool, state.config.health_timeout_s):
        return web.json_response({"status": "ok", "instance_id": state.config.instance_id})
    return problem_response(503, "database unreachable", headers={"Retry-After": "5"},
                            instance_id=state.config.instance_id)


async def info(request: web.Request) -> web.Response:
    """Small self-description, including pricing counters of this process."""
    state = state_of(request)
    pricing = state.pricing
    body = {"service": "legacy-mes", "instance_id": state.config.instance_id,
            "pricing": {"in_progress": pricing.in_progress, "waiting": pricing.waiting,
                        "completed": pricing.completed, "failed": pricing.failed,
                        "slots": state.config.price_slots, "delay_s": state.config.price_delay_s}}
    consumer = request.app.get(CRM_CONSUMER)
    if consumer is not None:
        stats = consumer.stats
        body["crm_consumer"] = {"created": stats.created, "duplicates": stats.duplicates,
                                "dead_lettered": stats.dead_lettered, "failures": stats.failures}
    return web.json_response(body)


def _database_ctx(config: MesConfig) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await open_pool(config)
        abandoned = await close_abandoned_calculations(pool, config.instance_id)
        app[MES_STATE] = MesState(config=config, pool=pool, pricing=PricingService(pool, config))
        logger.info("MES %s ready (%d abandoned price calculations closed)", config.instance_id, abandoned,
                    extra={"event.action": "service-start"})
        try:
            yield
        finally:
            await pool.close()
    return ctx


def _consumer_ctx(redis_url: str, consumer_config: ConsumerConfig,
                  tracer_provider: TracerProvider | None) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(redis_url)
        consumer = CrmConsumer(client, app[MES_STATE].pool, consumer_config, tracer_provider=tracer_provider)
        app[CRM_CONSUMER] = consumer
        task = asyncio.create_task(consumer.run(), name="crm-consumer")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()
    return ctx


def _slow_middleware(delay: float) -> Middleware:
    """Answer every API request ``delay`` seconds later (health and metrics stay fast), as the
    legacy MES does at its peaks; load-shedding tests and drills use it."""

    @web.middleware
    async def slow(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in ("/healthz", "/metrics"):
            await asyncio.sleep(delay)
        return await handler(request)

    return slow


def build_mes_app(config: MesConfig, *, crm_redis_url: str | None = None,
                  consumer_config: ConsumerConfig | None = None,
                  tracer_provider: TracerProvider | None = None) -> web.Application:
    """One MES instance; with ``crm_redis_url`` it also consumes the CRM queue in-process.

    Spans (SERVER per request, CONSUMER per queue entry) go to ``tracer_provider`` (tests: an
    in-memory exporter), default the global provider installed by ``telemetry.setup_tracing``.
    """
    app = web.Application(middlewares=[
        request_context_middleware(order_id_param="order_id"),
        server_span_filter(route_name=default_route_name, tracer_provider=tracer_provider),
        problem_middleware("legacy MES"),
        *([_slow_middleware(config.request_delay_s)] if config.request_delay_s > 0 else []),
    ], client_max_size=config.max_model_bytes)
    app.cleanup_ctx.append(_database_ctx(config))
    if crm_redis_url is not None:
        app.cleanup_ctx.append(_consumer_ctx(
            crm_redis_url, consumer_config or ConsumerConfig(consumer=config.instance_id), tracer_provider))
    app.router.add_get("/", info)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler())
    app.router.add_routes(orders_api.routes)
    app.router.add_routes(pricing_api.routes)
    return app
