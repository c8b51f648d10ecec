"""A real gateway process with the quote routes on both listeners, for the hostile-upload tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from legacy_sim.pricing.samples import box_triangles
from tests.integration.legacy_adapters.pricing_support import stl_of
from tests.support.gateway import GatewayUnderTest, gateway_config, gateway_process
from tests.support.partner_edge import api_keys_section, make_keys

STL = {"Content-Type": "model/stl"}
PROBLEM = "application/problem+json"


@asynccontextmanager
async def quote_gateway(tmp_path: Path, redis_url: str, *, max_body_bytes: int = 1 << 20,
                        **quotes: Any) -> AsyncIterator[tuple[GatewayUnderTest, str]]:
    """``python -m gateway`` with ``partner-quotes`` (external) and ``quotes`` (internal); yields
    the gateway and a partner key with the quote scopes."""
    store, (key,) = make_keys(tmp_path, ("acme", "gold", ("quotes:read", "quotes:write")))
    route = {"methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": max_body_bytes,
             "body_timeout": 30}
    cfg = gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
                 "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}, **route},
                {"name": "quotes", "listener": "internal", "prefix": "/quotes", **route}],
        api_keys=api_keys_section(store), quotes={"redis_url": redis_url, "probe_interval": 0.2, **quotes})
    async with gateway_process(cfg, tmp_path) as gw:
        yield gw, key


def boxes_triangles(count: int, *, size: float = 10.0) -> np.ndarray:
    """(12 * count, 3, 3) triangles: ``count`` boxes side by side, a valid closed model."""
    box = box_triangles(size, size, size)
    shifts = np.arange(count, dtype=np.float64)[:, None, None, None] * np.array([2 * size, 0.0, 0.0])
    triangles: np.ndarray = (box[None] + shifts).reshape(-1, 3, 3)
    return triangles


def boxes_stl(count: int, *, size: float = 10.0) -> bytes:
    """A valid binary STL of ``count`` boxes side by side (12 triangles each)."""
    return stl_of(boxes_triangles(count, size=size))


def ascii_stl(triangles: np.ndarray) -> bytes:
    """An ASCII STL of (n, 3, 3) triangles."""
    lines = ["solid test"]
    for tri in triangles:
        lines += ["facet normal 0 0 0", " outer loop",
                  *(f"  vertex {x:.6f} {y:.6f} {z:.6f}" for x, y, z in tri), " endloop", "endfacet"]
    return ("\n".join([*lines, "endsolid test", ""])).encode()


async def metric(gw: GatewayUnderTest, name: str, **labels: str) -> float:
    """One sample of the gateway's /metrics (0 when the series is absent)."""
    async with aiohttp.ClientSession() as s, s.get(f"{gw.admin}/metrics") as resp:
        text = await resp.text()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", re.M)
    for found, value in pattern.findall(text):
        if ",".join(sorted(found.split(","))) == want or (not want and not found):
            return float(value)
    return 0.0
