"""Going upstream for a cached route: collapsed misses, stale-if-error, background refresh.

The leader of a key sends the request (through the rest of the chain, i.e. the proxy) and
stores the answer under the versions read *before* it was sent: if an invalidation happens
meanwhile, the stored entry is unreachable at once.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import metrics
from gateway.cache import collapse, responses
from gateway.cache.collapse import Fetched, LeaderGone
from gateway.cache.entry import build_entry, not_storable_reason
from gateway.cache.keys import CacheKey
from gateway.cache.policy import CachePolicy
from gateway.cache.service import Lookup, ResponseCache
from gateway.errors import UpstreamError

UPSTREAM_ERRORS = (UpstreamError, aiohttp.ClientError, TimeoutError)


def declare_route(route: str) -> None:
    """Every result of a cached route at 0, so a dashboard's stale or collapsed rate reads 0, not no data."""
    for result in metrics.CACHE_RESULTS:
        metrics.CACHE_REQUESTS.labels(route=route, result=result)
    metrics.CACHE_COLLAPSED.labels(route=route)


def count(route: str, result: str) -> None:
    """One ``gateway_cache_requests_total`` sample."""
    metrics.CACHE_REQUESTS.labels(route=route, result=result).inc()


async def _capture(cache: ResponseCache, key: CacheKey, found: Lookup, policy: CachePolicy,
                   response: web.StreamResponse) -> Fetched | None:
    """Store the answer if allowed; None when it cannot be shared (streamed or private)."""
    if response.prepared or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    body = response.body
    reason = not_storable_reason(response.status, response.headers, len(body), policy.max_object_bytes)
    if reason in ("set-cookie", "cache-control"):
        return None
    entry = build_entry(response.headers, body, found.versions) if reason is None else None
    if entry is not None and not await cache.store(key, entry, policy.keep_for):
        entry, reason = None, "backend-error"
    return Fetched(status=response.status, headers=response.headers.copy(), body=body, entry=entry,
                   not_stored=reason)


def _stale_if_error(request: web.Request, found: Lookup, policy: CachePolicy, route: str,
                    fwd: str, upstream_status: int | None) -> web.Response | None:
    entry = found.entry
    if entry is None or (age := entry.age()) >= policy.ttl + policy.stale_if_error:
        return None
    count(route, "stale_if_error")
    status = f"; fwd-status={upstream_status}" if upstream_status else ""
    return responses.from_entry(request, entry, age=age, status_params=f"fwd={fwd}{status}; stale; "
                                f"{responses.ttl_param(policy.ttl, age)}; detail=stale-if-error")


async def _lead(request: web.Request, handler: Handler, cache: ResponseCache, key: CacheKey,
                found: Lookup, policy: CachePolicy, route: str, fwd: str) -> web.StreamResponse:
    async with cache.collapser.lead(key.entry) as future:
        try:
            response = await handler(request)
        except UPSTREAM_ERRORS as exc:
            future.set_exception(exc)
            if (stale := _stale_if_error(request, found, policy, route, fwd, None)) is not None:
                return stale
            raise
        fetched = await _capture(cache, key, found, policy, response)
        if fetched is None:
            future.set_exception(LeaderGone())
            return responses.finish_fetched(request, response, None,
                                            status_params=f"fwd={fwd}; detail=private")
        future.set_result(fetched)
    if response.status >= 500 and (stale := _stale_if_error(request, found, policy, route, fwd,
                                                             response.status)) is not None:
        return stale
    stored = "; stored" if fetched.entry is not None else f"; detail={fetched.not_stored}"
    return responses.finish_fetched(request, response, fetched.entry,
                                    status_params=f"fwd={fwd}; fwd-status={response.status}{stored}")


async def fetch(request: web.Request, handler: Handler, cache: ResponseCache, key: CacheKey,
                found: Lookup, policy: CachePolicy, route: str, fwd: str) -> web.StreamResponse:
    """Wait for the key's leader in this process, or lead: ask upstream once and store."""
    waiting = cache.collapser.waiting_for(key.entry)
    if waiting is None or fwd == "request":
        return await _lead(request, handler, cache, key, found, policy, route, fwd)
    metrics.CACHE_COLLAPSED.labels(route=route).inc()
    try:
        fetched = await collapse.wait(waiting, cache.config.collapse_timeout)
    except LeaderGone:
        return await _lead(request, handler, cache, key, found, policy, route, fwd)
    except UPSTREAM_ERRORS:
        if (stale := _stale_if_error(request, found, policy, route, fwd, None)) is not None:
            return stale
        raise
    if fetched.status >= 500 and (stale := _stale_if_error(request, found, policy, route, fwd,
                                                            fetched.status)) is not None:
        return stale
    return responses.from_shared(request, fetched.status, fetched.headers, fetched.body, fetched.entry,
                                 status_params="hit; detail=collapsed")


async def refresh(request: web.Request, handler: Handler, cache: ResponseCache, key: CacheKey,
                   found: Lookup, policy: CachePolicy) -> None:
    """Background revalidation: one per key in this process (collapser), one across instances (lock)."""
    if cache.collapser.waiting_for(key.entry) is not None:
        return
    if not await cache.try_refresh_lock(key, max(1.0, min(policy.stale_while_revalidate, 10.0))):
        return
    async with cache.collapser.lead(key.entry) as future:
        try:
            response = await handler(request)
        except UPSTREAM_ERRORS as exc:
            future.set_exception(exc)
            return
        fetched = await _capture(cache, key, found, policy, response)
        if fetched is None:
            future.set_exception(LeaderGone())
        else:
            future.set_result(fetched)
