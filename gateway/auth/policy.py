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

from configkit import ConfigError, Section, check, mapping, shown, string_list, text
from gateway.auth.partners import SCOPES


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
    s = Section(data, "api_keys", {"store", "pepper", "failures"})
    pepper = s.optional_text("pepper") or ""  # null or "": ${GATEWAY_API_KEY_PEPPER:-} left empty
    s.check(not pepper or len(pepper) >= 16, "pepper", "must be at least 16 characters")
    failures = s.section("failures", {"limit", "max_addresses", "log_sample"})
    return ApiKeysConfig(store=s.text("store", None, non_empty=True), pepper=pepper,
                         failures=_parse_failures(failures))


def _per(spec: Any, path: str) -> tuple[int, float]:
    """``30/minute`` (``limits`` notation) → (30, 60.0)."""
    try:
        item = limits.parse(text(spec, path))
    except ValueError:
        raise ConfigError(path, "must look like '30/minute' or '10 per 10 seconds', "
                                f"got {shown(spec)}") from None
    check(item.amount >= 1, path, f"the amount must be >= 1, got {shown(spec)}")
    return int(item.amount), float(item.get_expiry())


def _parse_failures(s: Section) -> AuthFailuresConfig:
    default = AuthFailuresConfig()
    limit: int | None
    raw = s.get("limit", "30/minute")
    if raw is False or raw is None:
        limit, seconds = None, default.seconds
    else:
        limit, seconds = _per(raw, s.at("limit"))
    log_lines, log_interval = _per(s.get("log_sample", "10/10 seconds"), s.at("log_sample"))
    return AuthFailuresConfig(limit=limit, seconds=seconds, log_lines=log_lines, log_interval=log_interval,
                              max_addresses=s.integer("max_addresses", default.max_addresses, minimum=1,
                                                      maximum=10_000_000))


def parse_route_auth(data: Any, path: str, methods: frozenset[str], *, default_required: bool) -> RouteAuth:
    """``routes[i].auth``: ``{required, scopes: {METHOD: [scope, ...] | scope}}``."""
    if data is None:
        return RouteAuth(required=default_required)
    s = Section(data, path, {"required", "scopes"})
    required = s.flag("required", True)
    scopes: dict[str, frozenset[str]] = {}
    for method, wanted in mapping(s.get("scopes") or {}, s.at("scopes")).items():
        m, here = str(method).upper(), s.at(f"scopes.{method}")
        check(m in methods, here, f"the route does not allow {m}")
        items = [text(wanted, here)] if isinstance(wanted, str) else string_list(wanted, here)
        if bad := sorted(set(items) - SCOPES):
            raise ConfigError(here, f"unknown scope {bad[0]!r} (have: {', '.join(sorted(SCOPES))})")
        scopes[m] = frozenset(items)
    s.check(not scopes or required, "scopes", "a route with required: false cannot demand scopes")
    return RouteAuth(required=required, scopes=scopes)
