"""A stand-in MES that answers the way a broken or hostile legacy might: chunked, huge, dripping,
ignoring the ``partner_id`` filter. Real aiohttp server on an ephemeral loopback port.

    async with hostile_mes() as mes:
        mes.list_items = [order("globex", 7)]     # what GET /orders answers (filter ignored)
        mes.requests                               # (method, path_qs, headers, body) seen
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


def order(partner: str, order_id: int, *, text: str = "bracket.stl") -> dict[str, Any]:
    """One MES order row as the legacy answers it (with its internal columns)."""
    return {"id": order_id, "partner_id": partner, "customer": "ACME", "material": "PLA", "quantity": 1,
            "model_name": text, "model_sha256": None, "price_eur": None, "status": "SUBMITTED",
            "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z",
            "status_changed_at": "2026-12-01T10:00:00Z", "source": "b2b",
            "external_ref": f"SECRET-REF-{order_id}"}


@dataclass
class HostileMes:
    url: str = ""
    #: Items of GET /orders (the MES "ignores" partner_id: it answers these whatever the query).
    list_items: list[dict[str, Any]] = field(default_factory=list)
    #: Orders by id for GET /orders/{id}.
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: How answers are framed: "length" (Content-Length), "chunked", or "drip" (headers at once,
    #: then one small chunk every ``drip_interval`` seconds, never finishing).
    framing: str = "length"
    drip_interval: float = 0.2
    #: When set, every request but /healthz gets this answer: (status, content type, body).
    error: tuple[int, str, bytes] | None = None
    #: When true, every request but /healthz has its connection reset (no answer at all).
    reset: bool = False
    #: (method, raw target, headers, body as received: never decompressed) of every request.
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    async def _answer(self, request: web.Request, data: Any, status: int = 200) -> web.StreamResponse:
        body = orjson.dumps(data)
        if self.framing == "length":
            return web.Response(status=status, body=body, content_type="application/json")
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if self.framing == "chunked":
            for start in range(0, len(body), 4096):
                await response.write(body[start:start + 4096])
            await response.write_eof()
            return response
        for start in range(0, len(body), 16):  # drip: the answer arrives a few bytes at a time
            await response.write(body[start:start + 16])
            await asyncio.sleep(self.drip_interval)
        await asyncio.sleep(3600)
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/healthz":
            return web.Response(text="ok")
        self.requests.append((request.method, request.raw_path, dict(request.headers), await request.read()))
        if self.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if self.error is not None:
            status, ctype, body = self.error
            return web.Response(status=status, body=body, headers={"Content-Type": ctype,
                                                                    "X-Internal-Host": "mes-1.plant.lan"})
        if request.path == "/orders" and request.method == "GET":
            return await self._answer(request, {"items": self.list_items, "page": 1, "offset": 0,
                                                "per_page": 100, "total": len(self.list_items)})
        if request.path == "/orders" and request.method == "POST":
            try:
                sent = orjson.loads(self.requests[-1][3])
            except orjson.JSONDecodeError:
                return web.json_response({"detail": "not JSON"}, status=400)
            return await self._answer(request, {**order(sent["partner_id"], 1), **sent}, status=201)
        if request.path.startswith("/orders/") and request.path[8:].isdigit():
            found = self.orders.get(int(request.path[8:]))
            if found is None:
                return web.json_response({"detail": "no such order"}, status=404)
            return await self._answer(request, found)
        return web.json_response({"detail": "unknown"}, status=404)


@asynccontextmanager
async def hostile_mes() -> AsyncIterator[HostileMes]:
    """Start the stand-in on 127.0.0.1:<ephemeral>; stopped on exit."""
    mes = HostileMes()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", mes.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    mes.url = f"http://127.0.0.1:{port}"
    try:
        yield mes
    finally:
        await runner.cleanup()
