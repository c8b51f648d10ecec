"""API-key authentication options: the ``api_keys:`` section and ``routes[i].auth``.

YAML::

    api_keys:
      store: .run/api-keys.json        # written by `python -m gateway.api_keys`, re-read when it changes
      pepper: ${GATEWAY_API_KEY_PEPPER:-}   # empty → a 0600 pepper file beside the store (dev only)
      failures:                        # refused attempts (401), before auth (gateway.auth.throttle)
        limit: 30/minute               # per client address and worker process, then 429; false → off
        max_addresses: 65536           # LRU cap of the address table
        log_sample: 10/10 seconds      # refusal log lines per reason, then one summary line
    routes:
      - {name: partner-orders, listener: external, ...,
         auth: {scopes: {GET: [orders:read], POST: [orders:write]}}}

Every external route requires a key unless it says ``auth: {required: false}``; internal
routes require one only if they say so. ``scopes`` maps a method to the scopes a key must
all have (``gateway.auth.partners.SCOPES``); methods not listed need a valid key only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import limits

from gateway.auth.partners import SCOPES
from gateway.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthFailuresConfig:
    """``api_keys.failures``: the pre-auth throttle per client address and the refusal log sample."""

    limit: int | None = 30  # refused attempts per address per ``seconds``; None: no throttle
    seconds: float = 60.0
    max_addresses: int = 65536
    log_lines: int = 10  # refusal log lines per reason per ``log_interval``
    log_interval: float = 10.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiKeysConfig:
    """Where the hashed keys live, the server-side pepper of their HMAC, what refusals cost."""

    store: str | None = None
    pepper: str = field(default="", repr=False)
    failures: AuthFailuresConfig = field(default_factory=AuthFailuresConfig)


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
    if unknown := sorted(set(map(str, data)) - {"store", "pepper", "failures"}):
        raise ConfigError(f"api_keys: unknown key {unknown[0]!r} (allowed: failures, pepper, store)")
    store, pepper = data.get("store"), data.get("pepper") or ""
    if store is not None and (not isinstance(store, str) or not store):
        raise ConfigError(f"api_keys.store: must be a file path, got {store!r}")
    if not isinstance(pepper, str):
        raise ConfigError("api_keys.pepper: must be a string (use ${GATEWAY_API_KEY_PEPPER})")
    if pepper and len(pepper) < 16:
        raise ConfigError("api_keys.pepper: must be at least 16 characters")
    return ApiKeysConfig(store=store, pepper=pepper, failures=_parse_failures(data.get("failures")))


def _per(spec: Any, path: str) -> tuple[int, float]:
    """``30/minute`` (``limits`` notation) → (30, 60.0)."""
    try:
        item = limits.parse(str(spec))
    except ValueError:
        raise ConfigError(f"{path}: must look like '30/minute' or '10 per 10 seconds', "
                          f"got {spec!r}") from None
    if item.amount < 1:
        raise ConfigError(f"{path}: the amount must be >= 1, got {spec!r}")
    return int(item.amount), float(item.get_expiry())


def _parse_failures(data: Any) -> AuthFailuresConfig:
    if data is None:
        return AuthFailuresConfig()
    if not isinstance(data, Mapping):
        raise ConfigError("api_keys.failures: must be a mapping")
    allowed = {"limit", "max_addresses", "log_sample"}
    if unknown := sorted(set(map(str, data)) - allowed):
        raise ConfigError(f"api_keys.failures: unknown key {unknown[0]!r} "
                          f"(allowed: {', '.join(sorted(allowed))})")
    default = AuthFailuresConfig()
    limit: int | None
    raw = data.get("limit", "30/minute")
    if raw is False or raw is None:
        limit, seconds = None, default.seconds
    else:
        limit, seconds = _per(raw, "api_keys.failures.limit")
    max_addresses = data.get("max_addresses", default.max_addresses)
    if (isinstance(max_addresses, bool) or not isinstance(max_addresses, int)
            or not 1 <= max_addresses <= 10_000_000):
        raise ConfigError(f"api_keys.failures.max_addresses: must be an integer in [1, 10000000], "
                          f"got {max_addresses!r}")
    log_lines, log_interval = _per(data.get("log_sample", "10/10 seconds"), "api_keys.failures.log_sample")
    return AuthFailuresConfig(limit=limit, seconds=seconds, max_addresses=max_addresses, log_lines=log_lines,
                              log_interval=log_interval)


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
