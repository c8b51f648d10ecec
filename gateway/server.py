"""Runs one gateway process: listeners + admin, graceful drain, SIGHUP reload."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import metrics
from gateway.admin import build_admin_app
from gateway.app import build_listener_app
from gateway.auth.api_keys import open_store
from gateway.cache import ResponseCache
from gateway.config import GatewayConfig, load_config
from gateway.edge.listener import ListenerRunner
from gateway.errors import ConfigError
from gateway.quotes.api import QuoteService
from gateway.ratelimit import PartnerLimiter
from gateway.state import GatewayState
from gateway.upstreams.manager import ClusterManager
from gateway.usage import UsageRecorder
from telemetry.access_log import AccessLog
from telemetry.tracing import setup_tracing

log = logging.getLogger("gateway.server")


async def reload_config(state: GatewayState, path: str | Path) -> bool:
    """Load, validate and apply ``path``; on any error keep the running config and say why."""
    try:
        new = load_config(path)
    except ConfigError as exc:
        metrics.CONFIG_RELOADS.labels(outcome="rejected").inc()
        log.error("config reload rejected, keeping the running config: %s", exc,
                  extra={"event.action": "config-reload", "event.outcome": "failure"})
        return False
    old = state.config
    if new.listeners != old.listeners or new.admin != old.admin:
        log.warning("listener/admin address changes take effect only after a restart",
                    extra={"event.action": "config-reload"})
        new = dataclasses.replace(new, listeners=old.listeners, admin=old.admin,
                                  routes=tuple(r for r in new.routes if r.listener in old.listeners))
    await state.clusters.reload(new.clusters)
    state.apply(new)
    state.reloads += 1
    metrics.CONFIG_RELOADS.labels(outcome="success").inc()
    metrics.CONFIG_LAST_RELOAD.set(time.time())
    log.info("config reloaded from %s", path, extra={"event.action": "config-reload",
                                                      "event.outcome": "success"})
    return True


async def _publish_gauges_periodically(interval: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval)
        metrics.publish_gauges()


async def _start_site(app: web.Application, host: str, port: int, *, reuse_port: bool,
                      config: GatewayConfig, keepalive: float, max_field: int, name: str,
                      max_fields: int = 100) -> web.AppRunner:
    # auto_decompress off: a body with Content-Encoding is forwarded as the client sent it (the
    # gateway's own body readers refuse encoded bodies with 415: gateway/filters/routing.py)
    runner = ListenerRunner(app, listener=name, access_log=None, handle_signals=False,
                           keepalive_timeout=keepalive, auto_decompress=False,
                           max_field_size=max_field, max_line_size=max_field, max_headers=max_fields,
                           shutdown_timeout=config.drain_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=1024)
    await site.start()
    return runner


async def serve(config_path: str | Path, *, reuse_port: bool = False,
                started: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                tracer_provider: Any = None, freeze_gc: bool = False) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); then drain in-flight requests and exit.

    ``freeze_gc`` (the ``python -m gateway`` processes) calls ``gc.freeze()`` once started;
    tests running many gateways in one process leave it off.

    Tracing follows the standard OTEL_* environment (off without an OTLP endpoint); tests pass
    their own ``tracer_provider`` (e.g. with an in-memory exporter).
    """
    config = load_config(config_path)
    own_provider = tracer_provider is None
    if own_provider:
        tracer_provider = setup_tracing("gateway")
    access_log = AccessLog(service_name="gateway", dataset="gateway.access", path=config.logging.access_log)
    access_log.start()
    clusters = ClusterManager(config.clusters)
    await clusters.start()
    state = GatewayState(config=config, clusters=clusters, tracer_provider=tracer_provider)
    state.apply(config)
    metrics.CONFIG_LAST_RELOAD.set(time.time())  # the first load counts: "since" is not since 1970
    api_keys = open_store(config.api_keys.store, config.api_keys.pepper)  # store path: restart to change
    limiter = PartnerLimiter(config.ratelimit)  # Redis client + heartbeat; redis_url: restart to change
    await limiter.start()
    cache = ResponseCache(config.cache)  # store + order-event feed; cache section: restart to change
    await cache.start()
    quotes = None  # the job API (routes with handler: quotes); quotes section: restart to change
    if config.quotes is not None:
        quotes = QuoteService(config.quotes, tracer_provider=tracer_provider)
        await quotes.start()
    usage = UsageRecorder(config.usage)  # per-partner counts, flushed to Redis; restart to change
    await usage.start()
    runners: list[web.AppRunner] = []
    for name, lst in config.listeners.items():
        app = build_listener_app(state, name, access_log=access_log, api_keys=api_keys, limiter=limiter,
                                 cache=cache, quotes=quotes, usage=usage)
        runners.append(await _start_site(app, lst.host, lst.port, reuse_port=reuse_port, config=config,
                                         keepalive=lst.keepalive_timeout, max_field=lst.max_header_bytes,
                                         max_fields=lst.max_header_fields, name=name))
    admin = await _start_site(build_admin_app(state, cache, usage), config.admin.host, config.admin.port,
                              reuse_port=reuse_port, config=config, keepalive=5.0, max_field=8190,
                              name="admin")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    publisher = loop.create_task(_publish_gauges_periodically())
    reloading: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        task = loop.create_task(reload_config(state, config_path))
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    if freeze_gc:
        # Start-up objects (modules, config, routes, metric children) leave the collector's
        # generations: full collections then scan only what requests allocate. At saturation
        # this took the gateway's p99 from ~47 ms to ~18 ms (bench/README.md).
        gc.freeze()
    log.info("gateway listening", extra={"event.action": "start", "gateway.listeners": {
        n: f"{lst.host}:{lst.port}" for n, lst in config.listeners.items()},
        "gateway.admin": f"{config.admin.host}:{config.admin.port}",
        "gateway.gc_frozen_objects": gc.get_freeze_count()})
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        publisher.cancel()
        state.draining = True
        log.info("draining in-flight requests", extra={"event.action": "drain",
                                                       "gateway.drain_timeout": config.drain_timeout})
        # cleanup() stops accepting, then waits for in-flight handlers up to shutdown_timeout
        await asyncio.gather(*(r.cleanup() for r in runners))
        await clusters.aclose()
        await limiter.aclose()
        await usage.aclose()  # after the drain: every served request's counts flushed (bounded)
        await cache.aclose()
        if quotes is not None:
            await quotes.aclose()
        await admin.cleanup()
        await access_log.aclose()
        if own_provider and tracer_provider is not None:
            tracer_provider.shutdown()  # flushes queued spans, bounded
        log.info("gateway stopped", extra={"event.action": "stop"})
