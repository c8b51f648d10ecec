"""The partner API as deployed: scoped orders route on real MES processes, optional quote route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.gateway import gateway_config
from tests.support.partner_edge import api_keys_section

ALL_SCOPES = ("orders:read", "orders:write", "quotes:read", "quotes:write")
NEW_ORDER = {"customer": "ACME GmbH", "material": "PLA", "quantity": 2, "model_name": "bracket.stl"}


def partner_api_config(tmp_path: Path, mes: list[str], store: Path, *,
                       quotes_redis: str | None = None) -> dict[str, Any]:
    """Gateway config: ``/partner/v1/orders`` (scoped) on ``mes``, generous limits, quotes if Redis."""
    routes: list[dict[str, Any]] = [
        {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
         "methods": ["GET", "POST"], "cluster": "mes", "rewrite_prefix": "/orders",
         "partner_scope": "orders", "auth": {"scopes": {"GET": ["orders:read"], "POST": ["orders:write"]}}},
        {"name": "orders", "listener": "internal", "prefix": "/orders", "cluster": "mes"},
        {"name": "partner-usage", "listener": "external", "prefix": "/partner/v1/usage", "methods": ["GET"],
         "handler": "usage"}]  # counts in this gateway's memory (no usage: section)
    top: dict[str, Any] = {}
    if quotes_redis is not None:
        routes.append({"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
                       "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 1048576,
                       "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}})
        top["quotes"] = {"redis_url": quotes_redis, "probe_interval": 0.5}
    return gateway_config(
        tmp_path,
        clusters={"mes": {"endpoints": mes, "timeouts": {"connect": 1, "per_try": 10, "overall": 20},
                          "health_check": {"path": "/healthz", "interval": 0.5}}},
        routes=routes, api_keys=api_keys_section(store),
        ratelimit={"redis_url": None, "default_tier": "test",
                   "tiers": {"test": {"burst": "10000/second"}}},
        **top)
