"""Run an aiohttp app on uvloop until SIGINT/SIGTERM, then shut it down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop
from aiohttp import web

from legacy_sim.events import log_event

logger = logging.getLogger("legacy_sim.serve")


async def serve_until_signal(app: web.Application, host: str, port: int, *, name: str) -> None:
    """Listen on ``host:port`` (0 = any free port, logged) until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = next((addr[1] for addr in runner.addresses if isinstance(addr, tuple)), port)
        log_event(logger, f"{name} listening on {host}:{bound}", action="service-start",
                  fields={"server.address": host, "server.port": bound})
        await stop.wait()
    finally:
        await runner.cleanup()
        log_event(logger, f"{name} stopped", action="service-stop")


def run_async(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main()`` on a uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())  # type: ignore[arg-type]
