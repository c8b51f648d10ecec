"""Cache filter: shared, collapsed, version-invalidated caching of the routes with a ``cache:`` policy.

Reads (GET/HEAD) are answered from the store when fresh (one round trip: versions + entry),
served stale while one background refresh runs (``stale_while_revalidate``) or while the MES
fails (``stale_if_error``), and otherwise fetched once per key (concurrent misses wait for that
one request). Writes (POST …) that succeed bump the versions of the order they changed before
the client sees the answer. Any store failure bypasses the cache; it never causes a 5xx.
Runs innermost, right before the proxy (after auth, rate limits and partner scoping).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.cache import responses
from gateway.cache.backends import CacheBackendError
from gateway.cache.entry import client_wants_fresh
from gateway.cache.fetch import count, fetch, refresh
from gateway.cache.invalidation import change_of_response
from gateway.cache.keys import Uncacheable, cache_key
from gateway.cache.service import Lookup, ResponseCache
from gateway.request_keys import PARTNER_KEY, ROUTE_KEY
from gateway.route_table import Route

_READS = frozenset({"GET", "HEAD"})
_background: set[asyncio.Task[None]] = set()


async def _bypass(request: web.Request, handler: Handler, route: str, why: str) -> web.StreamResponse:
    count(route, "bypass")
    response = await handler(request)
    if not response.prepared:
        response.headers["Cache-Status"] = responses.cache_status(
            f"fwd=bypass; fwd-status={response.status}; detail={why}")
    return response


async def _write(request: web.Request, handler: Handler, cache: ResponseCache, route: Route
                 ) -> web.StreamResponse:
    """A successful write invalidates what it changed before the client learns it succeeded."""
    response = await handler(request)
    if not 200 <= response.status < 300:
        return response
    created = request.method == "POST" and request.path.rstrip("/") == route.prefix.rstrip("/")
    body = response.body if isinstance(response, web.Response) else None
    change = change_of_response(body, created=created) if isinstance(body, bytes) else None
    try:
        if change is None:
            await cache.invalidator.everything("write")
        else:
            await cache.invalidator.order_changed(*change, reason="write", created=created)
    except CacheBackendError:
        pass  # counted; the store is marked dirty and bumps everything once it answers again
    return response


def cache_filter(*, cache: ResponseCache) -> Middleware:
    """``cache`` is started and closed by the server (it owns the store and the event feed)."""

    @web.middleware
    async def caching(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request[ROUTE_KEY]
        policy = route.cache
        if policy is None:
            return await handler(request)
        if request.method not in _READS:
            return await _write(request, handler, cache, route)
        partner = request.get(PARTNER_KEY)
        try:
            key = cache_key(keys=cache.keys, route=route.name, policy=policy, prefix=route.prefix,
                            path=request.path, query=request.query,
                            partner=partner.id if partner is not None else None)
        except Uncacheable as exc:
            return await _bypass(request, handler, route.name, str(exc))
        if not cache.usable:
            return await _bypass(request, handler, route.name, "events-feed-down")
        try:
            found = await cache.lookup(key)
        except CacheBackendError:
            return await _bypass(request, handler, route.name, "backend-error")
        wants_fresh = policy.honor_client_no_cache and client_wants_fresh(request.headers)
        entry = found.entry
        if entry is not None and not wants_fresh:
            age = entry.age()
            if age < policy.ttl:
                count(route.name, "hit")
                return responses.from_entry(request, entry, age=age,
                                            status_params=f"hit; {responses.ttl_param(policy.ttl, age)}")
            if age < policy.ttl + policy.stale_while_revalidate:
                count(route.name, "stale")
                task = asyncio.get_running_loop().create_task(
                    refresh(request, handler, cache, key, found, policy))
                _background.add(task)
                task.add_done_callback(_background.discard)
                return responses.from_entry(request, entry, age=age, status_params=(
                    f"hit; stale; {responses.ttl_param(policy.ttl, age)}; detail=stale-while-revalidate"))
        if request.method == "HEAD":
            return await _bypass(request, handler, route.name, "head-miss")
        fwd, result = _forward_kind(wants_fresh, found)
        count(route.name, result)
        return await fetch(request, handler, cache, key, found, policy, route.name, fwd)

    return caching


def _forward_kind(refresh: bool, found: Lookup) -> tuple[str, str]:
    """RFC 9211 ``fwd`` value and our metric result for a read that goes upstream."""
    if refresh:
        return "request", "refresh"
    if found.entry is not None:
        return "stale", "expired"
    if found.invalidated:
        return "miss", "invalidated"
    return "uri-miss", "miss"
