"""Wires a :class:`CrmRelay` into a running sidecar: Redis client, HTTP session, task, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack

import aiohttp
from opentelemetry import trace

from sharedstate.redis_spec import parse_redis_spec
from sidecar.relay.config import RelayConfig
from sidecar.relay.relay import CrmRelay


async def start_relay(stack: AsyncExitStack, config: RelayConfig, *, mes_url: str, instance: str,
                      tracer_provider: trace.TracerProvider | None = None) -> CrmRelay:
    """Start the relay as a task; ``stack`` stops it (draining deliveries), then closes its clients.

    Its own session: a connection per delivery at most ``max_in_flight`` (a safety net under the
    adaptive limit), no cookies, no proxy from the environment.
    """
    client = parse_redis_spec(config.redis_url, "--relay-redis-url").client(
        socket_timeout=config.block_ms / 1000 + 5.0, socket_connect_timeout=2.0)
    stack.push_async_callback(client.aclose)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=config.max_in_flight),
                                    cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
    stack.push_async_callback(session.close)
    relay = CrmRelay(client, session, mes_url, config, instance=instance, tracer_provider=tracer_provider)
    task = asyncio.get_running_loop().create_task(relay.run(), name="sidecar-relay")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack.push_async_callback(stop)
    return relay
