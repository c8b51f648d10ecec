"""Helpers for auth / rate-limit / usage tests: a key store with known keys and the partner echo route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.auth.api_keys import ApiKeyStore
from tests.support.gateway import gateway_config

PEPPER = "test-pepper-0123456789abcdef"


def make_keys(tmp_path: Path, *specs: tuple[str, str, tuple[str, ...]]) -> tuple[Path, list[str]]:
    """Create one key per (partner, tier, scopes) in ``tmp_path/keys.json``; returns (store, keys)."""
    path = tmp_path / "keys.json"
    store = ApiKeyStore(path, PEPPER.encode())
    return path, [store.create(partner=p, tier=t, scopes=s)[0] for p, t, s in specs]


def api_keys_section(store: Path) -> dict[str, Any]:
    return {"store": str(store), "pepper": PEPPER}


#: The external partner route of the auth / rate-limit / usage tests, outside the partner API document.
ECHO_PATH = "/partner/test/echo"


def partner_echo_route(**options: Any) -> dict[str, Any]:
    """``/partner/test/echo`` on the external listener → cluster ``mes``'s ``/echo`` (the fake
    upstream's echo); ``options`` add or override route keys (``auth``, ``ratelimit``, …)."""
    return {"name": "partner-echo", "listener": "external", "prefix": ECHO_PATH, "cluster": "mes",
            "rewrite_prefix": "/echo", **options}


def partner_echo_config(tmp_path: Path, upstream: str, store: Path, *, route: dict[str, Any] | None = None,
                        extra_routes: tuple[dict[str, Any], ...] = (), **top: Any) -> dict[str, Any]:
    """A gateway config (``tests.support.gateway.gateway_config``) with cluster ``mes`` = ``upstream``,
    the partner echo route (with ``route``'s options), ``extra_routes`` and the key store ``store``;
    ``top`` adds top-level sections (``ratelimit``, ``usage``, …)."""
    return gateway_config(tmp_path, clusters={"mes": {"endpoints": [upstream]}},
                          routes=[partner_echo_route(**(route or {})), *extra_routes],
                          api_keys=api_keys_section(store), **top)
