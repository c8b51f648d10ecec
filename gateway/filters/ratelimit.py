"""Rate-limit filter: every window of the partner's plan (tier, overrides, route) checked at once.

Allowed → the response carries ``RateLimit-Policy`` and ``RateLimit`` (remaining budget): the
windows the decision enforced, i.e. each instance's local share in degraded mode.
Limited → 429 problem+json (``quota-exceeded``, ``violated-policies``) with ``Retry-After``.
Needs ``request[PARTNER_KEY]``, so it runs after the auth filter (config guarantees auth on
every rate-limited route). Streamed responses (> 256 KiB) go out without the headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway import metrics
from gateway.auth.partners import Partner
from gateway.errors import RateLimited
from gateway.ratelimit import PartnerLimiter, Window, policy_field, retry_after
from gateway.ratelimit.headers import item_prefixes, ratelimit_items
from gateway.ratelimit.policy import RateLimitConfig
from gateway.request_keys import PARTNER_KEY, RATELIMIT_DECISION_KEY, REQUEST_ID_KEY, ROUTE_KEY, STATE_KEY
from gateway.route_table import Route
from resilience.problem import problem_response

_Plan = tuple[tuple[Window, ...], tuple[tuple[str, ...], ...], str, tuple[str, ...], Any, Any]


def _plan(cfg: RateLimitConfig, partner: Partner, route: Route) -> _Plan:
    """Windows, counter identifiers, policy header and metric children for (partner, route)."""
    shared = cfg.windows_for(partner.id, partner.tier)
    windows = shared + route.ratelimit.windows
    ids = tuple([("partner", partner.id)] * len(shared)
                + [("route", route.name, partner.id)] * len(route.ratelimit.windows))
    tier = partner.tier if partner.tier in cfg.tiers else "other"  # bounded label
    return (windows, ids, policy_field(windows), item_prefixes(windows),
            metrics.RATELIMIT_DECISIONS.labels(tier=tier, route=route.name, decision="allowed"),
            metrics.RATELIMIT_DECISIONS.labels(tier=tier, route=route.name, decision="limited"))


def declare_decisions(cfg: RateLimitConfig, routes: Iterable[Route]) -> None:
    """Both decisions of every configured tier on every rate-limited route at 0 from start-up, so
    PartnerTierRateLimited's rate() sees the first limited request."""
    for route in routes:
        if route.ratelimit.enabled:
            for tier in cfg.tiers:
                for decision in ("allowed", "limited"):
                    metrics.RATELIMIT_DECISIONS.labels(tier=tier, route=route.name, decision=decision)


def ratelimit_filter(*, limiter: PartnerLimiter) -> Middleware:
    """``limiter`` is started and stopped by the server (it owns the Redis client and heartbeat)."""
    plans: dict[tuple[Partner, str], _Plan] = {}
    planned_for: list[RateLimitConfig | None] = [None]  # plans are dropped when a reload swaps it

    @web.middleware
    async def ratelimit(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request[ROUTE_KEY]
        if not route.ratelimit.enabled:
            return await handler(request)
        partner = request[PARTNER_KEY]
        cfg = request.app[STATE_KEY].config.ratelimit  # tiers follow SIGHUP reloads
        if cfg is not planned_for[0]:
            plans.clear()
            planned_for[0] = cfg
        key = (partner, route.name)
        plan = plans.get(key)
        if plan is None:
            if len(plans) > 10_000:
                plans.clear()
            plan = plans[key] = _plan(cfg, partner, route)
        windows, ids, policy, prefixes, allowed_count, limited_count = plan
        decision = await limiter.check(windows, ids, on_backend_error=route.ratelimit.on_backend_error)
        if decision is None:  # fail-open while the store is away
            return await handler(request)
        if decision.windows is not windows:  # degraded: advertise the local shares it enforced
            policy = policy_field(decision.windows)
        current = ratelimit_items(prefixes, decision.remaining, decision.reset_in)
        if not decision.allowed:
            limited_count.inc()
            violated = decision.violated
            wait = retry_after([t for w, t in zip(windows, decision.reset_in, strict=True)
                                if w.name in violated])
            return problem_response(
                status=RateLimited.status, title=RateLimited.title, type_slug=RateLimited.type_slug,
                detail=f"Quota exceeded for {', '.join(violated)}; retry after {wait} s.",
                request_id=request.get(REQUEST_ID_KEY), retry_after=wait,
                extra={"violated-policies": list(violated)},
                headers={"RateLimit-Policy": policy, "RateLimit": current})
        allowed_count.inc()
        request[RATELIMIT_DECISION_KEY] = decision  # the usage endpoint's remaining quota
        response = await handler(request)
        if not response.prepared:
            response.headers["RateLimit-Policy"] = policy
            response.headers["RateLimit"] = current
        return response

    return ratelimit
