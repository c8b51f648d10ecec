"""Auth filter: API key (``Authorization: Bearer`` or ``X-API-Key``) → ``request[PARTNER_KEY]``.

Runs only on routes whose ``auth.required`` is true (every external route unless it opts
out). Missing, unknown or revoked key → 401 problem+json with ``WWW-Authenticate: Bearer``;
a valid key without the route's scope for the method → 403. The key itself is never logged:
only its non-secret id.

Before the key is looked at, the client address's budget of refused attempts is checked
(``gateway.auth.throttle``): an address that used it up gets 429 problem+json with
``Retry-After``. Refusal log lines are sampled per reason (``telemetry.log_sampling``); the
metrics count every refusal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDictProxy

from gateway import metrics
from gateway.auth.api_keys import ApiKeyRecord, ApiKeyStore, open_store, split_key
from gateway.auth.partners import Partner
from gateway.auth.policy import ApiKeysConfig
from gateway.auth.throttle import AddressThrottle, client_address
from gateway.errors import Forbidden, RateLimited, Unauthorized
from gateway.request_keys import PARTNER_KEY, REQUEST_ID_KEY, ROUTE_KEY
from resilience.problem import problem_response
from telemetry.log_sampling import LogSampler

log = logging.getLogger("gateway.auth")
_DETAIL = {"missing": "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
           "invalid": "The API key is not valid.",
           "revoked": "The API key has been revoked."}


def _presented_key(headers: CIMultiDictProxy[str]) -> str | None:
    auth = headers.get("Authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else ""
    return headers.get("X-API-Key")


def _peer(request: web.Request) -> str:
    """The TCP peer's throttle key (``X-Forwarded-For`` is never read here)."""
    transport = request.transport
    return client_address(transport.get_extra_info("peername") if transport is not None else None)


def _log_summary(kind: str, suppressed: int, interval: float) -> None:
    log.warning("auth refusals: %d more %r events not logged in the last %g s", suppressed, kind, interval,
                extra={"event.action": "auth-failure-summary", "event.reason": kind,
                       "gateway.suppressed": suppressed})


def auth_filter(*, listener: str, config: ApiKeysConfig, store: ApiKeyStore | None = None) -> Middleware:
    """Build the filter; the store is opened now (bad path/pepper fails at start-up, not later)."""
    keys = store if store is not None else open_store(config.store, config.pepper)
    partners: dict[ApiKeyRecord, Partner] = {}
    failures: dict[str, Any] = {r: metrics.AUTH_FAILURES.labels(listener=listener, reason=r)
                                for r in ("missing", "invalid", "revoked", "forbidden")}
    throttled = metrics.AUTH_THROTTLED.labels(listener=listener)  # exists at 0 from start-up
    budget = config.failures
    throttle = (AddressThrottle(failures=budget.limit, seconds=budget.seconds,
                                max_addresses=budget.max_addresses) if budget.limit is not None else None)
    sampler = LogSampler(lines=budget.log_lines, interval=budget.log_interval, summary=_log_summary)

    def refuse(request: web.Request, reason: str, presented: str | None) -> web.Response:
        failures[reason].inc()
        if throttle is not None:
            address = _peer(request)
            if throttle.failure(address, time.monotonic()) and sampler.allow("throttled"):
                log.warning("client address throttled: its refused api keys used up the budget", extra={
                    "event.action": "auth-throttled", "client.address": address,
                    "gateway.budget": f"{budget.limit} per {budget.seconds:g} s"})
        if sampler.allow(reason):
            parts = split_key(presented) if presented else None
            log.info("api key refused: %s", reason, extra={
                "event.action": "auth-failure", "event.reason": reason, "url.path": request.path,
                "gateway.api_key_id": parts[0] if parts else None})
        challenge = 'Bearer realm="mes-edge"' + ("" if reason == "missing" else ', error="invalid_token"')
        return problem_response(status=Unauthorized.status, title=Unauthorized.title,
                                type_slug=Unauthorized.type_slug, detail=_DETAIL[reason],
                                request_id=request.get(REQUEST_ID_KEY),
                                headers={"WWW-Authenticate": challenge})

    def too_many(request: web.Request, wait: float) -> web.Response:
        throttled.inc()
        return problem_response(status=RateLimited.status, title=RateLimited.title,
                                type_slug="auth-attempts-exceeded",
                                detail="Too many requests with a missing or invalid API key from this "
                                       "address; retry later.",
                                request_id=request.get(REQUEST_ID_KEY), retry_after=wait)

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request[ROUTE_KEY]
        if not route.auth.required:
            return await handler(request)
        if throttle is not None and len(throttle):  # no address has failed lately: nothing to look up
            wait = throttle.wait(_peer(request), time.monotonic())
            if wait:
                return too_many(request, wait)
        keys.maybe_reload()
        presented = _presented_key(request.headers)
        if not presented:
            return refuse(request, "missing" if presented is None else "invalid", None)
        record, reason = keys.verify(presented)
        if record is None:
            return refuse(request, reason, presented)
        partner = partners.get(record)
        if partner is None:
            if len(partners) > 10_000:
                partners.clear()
            partner = partners[record] = Partner(id=record.partner, tier=record.tier,
                                                 scopes=frozenset(record.scopes), key_id=record.key_id)
        request[PARTNER_KEY] = partner
        needed = route.auth.scopes_for(request.method)
        if not needed <= partner.scopes:
            failures["forbidden"].inc()
            missing = ", ".join(sorted(needed - partner.scopes))
            return problem_response(status=Forbidden.status, title=Forbidden.title,
                                    type_slug=Forbidden.type_slug,
                                    detail=f"This API key lacks the scope {missing} for {request.method}.",
                                    request_id=request.get(REQUEST_ID_KEY),
                                    extra={"missing_scopes": sorted(needed - partner.scopes)})
        # the partner's key stays here: with PARTNER_KEY set, the proxy strips the credential
        # headers (resilience/forwarding.py); the legacy systems behind us log headers
        return await handler(request)

    return auth
