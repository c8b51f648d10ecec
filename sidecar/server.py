"""Runs one sidecar: proxy and admin listeners, event publisher, probes, history poller, CRM relay.

Start-up order: access log → Redis publisher → database pool → background tasks →
listeners. Shutdown (SIGTERM/SIGINT or ``stop``) in reverse: ``/readyz`` turns 503,
the proxy stops accepting and drains in-flight requests (``drain_timeout``), the
background tasks stop, queued events get 2 s, connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web
from opentelemetry import trace

from sharedstate.redis_spec import parse_redis_spec
from sidecar import metrics
from sidecar.admin import Readiness, build_admin_app
from sidecar.app import build_app
from sidecar.config import SidecarConfig
from sidecar.db import open_readonly_pool
from sidecar.events import EventPublisher
from sidecar.history_poller import HistoryPoller
from sidecar.probe_runner import ProbeRunner
from sidecar.probes import BusinessProbes
from sidecar.relay.service import start_relay
from sidecar.replica_lag import PROBE as REPLICA_LAG_PROBE
from sidecar.replica_lag import ReplicaLag
from telemetry.access_log import AccessLog

logger = logging.getLogger("sidecar")


async def _site(stack: AsyncExitStack, app: web.Application, host: str, port: int,
                shutdown_timeout: float) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


def _task(stack: AsyncExitStack, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(coro, name=name)

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack.push_async_callback(cancel)
    return task


async def serve(config: SidecarConfig, *, tracer_provider: trace.TracerProvider | None = None,
                started: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                service_name: str | None = None) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    stop = stop or _stop_on_signals()
    service = service_name or f"sidecar-{config.kind}"
    runner = ProbeRunner(kind=config.kind, instance=config.instance_id)
    for reason in metrics.UPSTREAM_ERROR_REASONS:  # "Calls to the legacy that failed" reads 0
        metrics.UPSTREAM_ERRORS.labels(config.kind, config.instance_id, reason)
    async with AsyncExitStack() as stack:
        access_log = AccessLog(service_name=service, dataset="sidecar.access", path=config.access_log,
                               fields={"sidecar.kind": config.kind, "sidecar.instance": config.instance_id})
        access_log.start()
        stack.push_async_callback(access_log.aclose)
        publisher = None
        if config.redis_url:
            client = parse_redis_spec(config.redis_url, "--redis-url").client(
                socket_timeout=1.0, socket_connect_timeout=1.0)
            stack.push_async_callback(client.aclose)
            publisher = EventPublisher(client, kind=config.kind, instance=config.instance_id)
            publisher.start()
            stack.push_async_callback(publisher.aclose)
        if config.dsn:
            pool = await open_readonly_pool(config.dsn, instance=config.instance_id,
                                            statement_timeout_s=config.probe_statement_timeout)
            stack.push_async_callback(pool.close)
            reads = pool  # the business probes read the replica when there is one (docs/mes-data.md)
            if config.read_dsn:
                reads = await open_readonly_pool(config.read_dsn, instance=config.instance_id,
                                                 statement_timeout_s=config.probe_statement_timeout)
                stack.push_async_callback(reads.close)
                lag = ReplicaLag(pool, reads, runner, replica_name=config.replica_name)
                await runner.run(REPLICA_LAG_PROBE, lag.measure)  # measured before "ready"
                _task(stack, lag.run(config.probe_interval), "sidecar-replica-lag")
            probes = BusinessProbes(reads, runner, terminal_count_interval=config.terminal_count_interval,
                                    instance=config.instance_id)
            _task(stack, probes.run(config.probe_interval), "sidecar-probes")
            if publisher is not None:
                poller = HistoryPoller(pool, publisher, runner, instance=config.instance_id)
                # find the starting id before accepting traffic: every change after "ready" is seen
                await runner.run("order_history", poller.poll_once)
                _task(stack, poller.run(config.history_poll_interval), "sidecar-history-poller")
        relay = None
        if config.relay is not None:
            relay = await start_relay(stack, config.relay, mes_url=config.upstream_base,
                                      instance=config.instance_id, tracer_provider=tracer_provider)

        def status() -> dict[str, object]:
            return {"probes_failing": sorted(runner.failing),
                    "events": None if publisher is None else {"redis_ok": publisher.connected},
                    "relay": None if relay is None else relay.status()}

        readiness = Readiness(config, status)
        await _site(stack, build_admin_app(readiness), config.admin_host, config.admin_port, 1.0)
        app = build_app(config, access_log=access_log, publisher=publisher, tracer_provider=tracer_provider)
        await _site(stack, app, config.listen_host, config.listen_port, config.drain_timeout)
        logger.info("sidecar %s (%s) proxying %s:%d → %s", config.instance_id, config.kind,
                    config.listen_host, config.listen_port, config.upstream,
                    extra={"event.action": "service-start"})
        if started is not None:
            started.set()
        await stop.wait()
        readiness.draining = True
        logger.info("sidecar %s stopping", config.instance_id, extra={"event.action": "service-stop"})


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
