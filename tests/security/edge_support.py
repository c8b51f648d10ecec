"""The partner edge as deployed, in front of a stand-in MES: one `python -m gateway` process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.gateway import GatewayUnderTest, gateway_config, gateway_process
from tests.support.partner_edge import api_keys_section, make_keys

PROBLEMS = "https://mes-edge.dev/problems/"
SCOPES = ("orders:read", "orders:write")


def edge_config(tmp_path: Path, mes_url: str, store: Path, *, overall: float = 3.0,
                **top: Any) -> dict[str, Any]:
    """The shipped partner-orders route (scoped) and an internal /orders route on ``mes_url``."""
    routes: list[dict[str, Any]] = [
        {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
         "methods": ["GET", "POST"], "cluster": "mes", "rewrite_prefix": "/orders",
         "partner_scope": "orders", "auth": {"scopes": {"GET": ["orders:read"], "POST": ["orders:write"]}}},
        {"name": "orders", "listener": "internal", "prefix": "/orders", "methods": ["GET", "POST"],
         "cluster": "mes"}]
    return gateway_config(
        tmp_path,
        clusters={"mes": {"endpoints": [mes_url], "retry": {"attempts": 0},
                          "timeouts": {"connect": 1, "per_try": overall, "overall": overall},
                          "health_check": {"path": "/healthz", "interval": 0.5}}},
        routes=routes, api_keys=api_keys_section(store),
        ratelimit={"redis_url": None, "default_tier": "test", "tiers": {"test": {"burst": "10000/second"}}},
        **top)


@asynccontextmanager
async def partner_edge(tmp_path: Path, mes_url: str, **config: Any
                       ) -> AsyncIterator[tuple[GatewayUnderTest, dict[str, str]]]:
    """The gateway process plus one key each for partners ``acme`` and ``globex``."""
    store, (acme, globex) = make_keys(tmp_path, ("acme", "gold", SCOPES), ("globex", "gold", SCOPES))
    async with gateway_process(edge_config(tmp_path, mes_url, store, **config), tmp_path) as gw:
        yield gw, {"acme": acme, "globex": globex}


async def read_problem(r: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    """Assert ``r`` is our problem+json with ``status`` and the request id; return its body."""
    text = await r.text()
    assert r.status == status, text
    assert r.content_type == "application/problem+json", text
    body: dict[str, Any] = await r.json(content_type=None)
    assert body["type"].startswith(PROBLEMS)
    assert body["instance"] == f"urn:request:{r.headers['X-Request-ID']}"
    return body


async def raw_exchange(base_url: str, request: bytes, *, timeout: float = 10.0
                       ) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` (bytes, as typed) on a fresh connection; (status, headers, body) of the answer.

    The request should say ``Connection: close``; the gateway closes after an error anyway.
    """
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return int(lines[0].split()[1]), headers, body


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)
