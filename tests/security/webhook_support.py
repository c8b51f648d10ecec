"""The webhook path as deployed: a `python -m gateway` process taking partner quotes, real
`python -m legacy_adapters.worker` processes delivering webhooks, and partner receivers.

``receiver_verify`` is the partner's check exactly as docs/partner-api.md shows it: written
from the Standard Webhooks spec, independent of ``legacy_adapters.webhook_signing``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

from tests.integration.legacy_adapters.pricing_support import wait_until
from tests.support.gateway import GatewayUnderTest, gateway_config, gateway_process
from tests.support.partner_edge import api_keys_section

STL = {"Content-Type": "model/stl"}
SCOPES = ("quotes:read", "quotes:write")


async def _true(value: bool) -> bool:
    return value


def receiver_verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> bool:
    """A partner's receiver: Standard Webhooks check, 5-minute tolerance (docs/partner-api.md)."""
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs((time.time() if now is None else now) - int(ts)) > 300:
        return False  # too old (or from the future): a replay
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(expected, sig) for sig in headers["webhook-signature"].split(" "))


@dataclass
class Delivery:
    """One webhook as a receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receivers:
    """An HTTP server standing in for every partner's webhook endpoint (one path per partner)."""

    server: BaseTestServer
    received: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    hanging: dict[str, int] = field(default_factory=dict)  # path → requests waiting now
    most_hanging: dict[str, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # deliveries taken off the queue while waiting for another path's: kept for their own next_for
    # (the pricing queue is fair across partners, so two partners' webhooks may come in either order)
    kept: dict[str, list[Delivery]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def idle(self, path: str, timeout: float) -> None:
        """Until no request to ``path`` is waiting for an answer."""
        await wait_until(lambda: _true(self.hanging.get(path, 0) == 0), timeout, f"{path} idle")

    async def hanging_at_least(self, path: str, count: int, timeout: float) -> None:
        """Until at least ``count`` requests to ``path`` are waiting for an answer at once."""
        await wait_until(lambda: _true(self.hanging.get(path, 0) >= count), timeout,
                         f"{count} requests to {path} waiting")

    async def next_for(self, path: str, timeout: float) -> Delivery:
        """The next delivery to ``path`` within ``timeout`` seconds (others are kept for theirs)."""
        if self.kept.get(path):
            return self.kept[path].pop(0)
        async with asyncio.timeout(timeout):
            while True:
                delivery = await self.received.get()
                if delivery.path == path:
                    return delivery
                self.kept.setdefault(delivery.path, []).append(delivery)


@asynccontextmanager
async def receivers(hang: tuple[str, ...] = ()) -> AsyncIterator[Receivers]:
    """Receivers on 127.0.0.1; a path in ``hang`` never answers until the test ends."""
    app = web.Application()
    state: dict[str, Receivers] = {}

    async def hook(request: web.Request) -> web.Response:
        r = state["r"]
        if request.path in hang:
            r.hanging[request.path] = r.hanging.get(request.path, 0) + 1
            r.most_hanging[request.path] = max(r.most_hanging.get(request.path, 0), r.hanging[request.path])
            try:
                await r.release.wait()
            finally:
                r.hanging[request.path] -= 1
            return web.Response(status=503)
        await r.received.put(Delivery(request.path, dict(request.headers), await request.read()))
        return web.Response(status=204)

    app.router.add_post("/{partner}/hook", hook)
    async with TestServer(app, host="127.0.0.1") as server:
        state["r"] = Receivers(server)
        try:
            yield state["r"]
        finally:
            state["r"].release.set()


def quotes_config(tmp_path: Path, redis_url: str, store: Path) -> dict[str, Any]:
    """The partner quote route on the external listener, receivers allowed on loopback."""
    return gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
                 "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 4096,
                 "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}}],
        api_keys=api_keys_section(store),
        quotes={"redis_url": redis_url, "probe_interval": 0.5, "allow_private_callbacks": True})


@asynccontextmanager
async def quote_gateway(tmp_path: Path, redis_url: str, store: Path) -> AsyncIterator[GatewayUnderTest]:
    async with gateway_process(quotes_config(tmp_path, redis_url, store), tmp_path) as gw:
        yield gw


async def submit_quote(gw: GatewayUnderTest, key: str, model: bytes, callback: str) -> dict[str, Any]:
    """A partner's ``POST /partner/v1/quotes`` with a callback; the job as answered (202)."""
    async with aiohttp.ClientSession() as s, s.post(
            f"{gw.external}/partner/v1/quotes", data=model, headers={**STL, "Authorization": f"Bearer {key}"},
            params={"material": "PLA", "callback_url": callback}) as resp:
        assert resp.status in (200, 202), await resp.text()
        job: dict[str, Any] = await resp.json()
        return job
