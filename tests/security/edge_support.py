"""The partner edge as deployed, in front of a stand-in MES: one `python -m gateway` process."""

from __future__ import annotations

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
