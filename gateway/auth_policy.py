"""API-key authentication options: the ``api_keys:`` section and ``routes[i].auth``.

YAML::

    api_keys:
      store: .run/api-keys.json        # written by `python -m gateway.api_keys`, re-read when it changes
      pepper: ${GATEWAY_API_KEY_PEPPER:-}   # empty → a 0600 pepper file beside the store (dev only)
    routes:
      - {name: partner-orders, listener: external, ...,
         auth: {scopes: {GET: [orders:read], POST: [orders:write]}}}

Every external route requires a key unless it says ``auth: {required: false}``; internal
routes require one only if they say so. ``scopes`` maps a method to the scopes a key must
all have (``gateway.partners.SCOPES``); methods not listed need a valid key only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ConfigError
from gateway.partners import SCOPES


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiKeysConfig:
    """Where the hashed keys live and the server-side pepper of their HMAC."""

    store: str | None = None
    pepper: str = field(default="", repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class RouteAuth:
    """Per-route authentication: required or not, scopes needed per method."""

    required: bool = False
    scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def scopes_for(self, method: str) -> frozenset[str]:
        """The scopes a key needs for ``method`` (HEAD follows GET)."""
        found = self.scopes.get(method)
        if found is None and method == "HEAD":
            found = self.scopes.get("GET")
        return found or frozenset()


def parse_api_keys_section(data: Any) -> ApiKeysConfig:
    """Validate the top-level ``api_keys:`` mapping."""
    if data is None:
        return ApiKeysConfig()
    if not isinstance(data, Mapping):
        raise ConfigError("api_keys: must be a mapping")
    if unknown := sorted(set(map(str, data)) - {"store", "pepper"}):
        raise ConfigError(f"api_keys: unknown key {unknown[0]!r} (allowed: pepper, store)")
    store, pepper = data.get("store"), data.get("pepper") or ""
    if store is not None and (not isinstance(store, str) or not store):
        raise ConfigError(f"api_keys.store: must be a file path, got {store!r}")
    if not isinstance(pepper, str):
        raise ConfigError("api_keys.pepper: must be a string (use ${GATEWAY_API_KEY_PEPPER})")
    if pepper and len(pepper) < 16:
        raise ConfigError("api_keys.pepper: must be at least 16 characters")
    return ApiKeysConfig(store=store, pepper=pepper)


def parse_route_auth(data: Any, path: str, methods: frozenset[str], *, default_required: bool) -> RouteAuth:
    """``routes[i].auth``: ``{required, scopes: {METHOD: [scope, ...] | scope}}``."""
    if data is None:
        return RouteAuth(required=default_required)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be a mapping")
    if unknown := sorted(set(map(str, data)) - {"required", "scopes"}):
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: required, scopes)")
    required = data.get("required", True)
    if not isinstance(required, bool):
        raise ConfigError(f"{path}.required: must be true or false, got {required!r}")
    scopes_raw = data.get("scopes") or {}
    if not isinstance(scopes_raw, Mapping):
        raise ConfigError(f"{path}.scopes: must map a method to a list of scopes")
    scopes: dict[str, frozenset[str]] = {}
    for method, wanted in scopes_raw.items():
        m = str(method).upper()
        if m not in methods:
            raise ConfigError(f"{path}.scopes.{method}: the route does not allow {m}")
        items = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ConfigError(f"{path}.scopes.{method}: must be a scope or a list of scopes")
        if bad := sorted(set(items) - SCOPES):
            raise ConfigError(f"{path}.scopes.{method}: unknown scope {bad[0]!r} "
                              f"(have: {', '.join(sorted(SCOPES))})")
        scopes[m] = frozenset(items)
    if scopes and not required:
        raise ConfigError(f"{path}.scopes: a route with required: false cannot demand scopes")
    return RouteAuth(required=required, scopes=scopes)
