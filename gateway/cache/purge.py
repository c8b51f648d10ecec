"""Admin purge endpoints (admin listener only): ``POST /cache/purge?…``.

* ``route=<name>`` — bump the route's version: every entry of the route, on every instance
  sharing the Redis store, becomes unreachable at once;
* ``key=<path?query>`` (+ ``listener=internal|external``, ``partner=<id>`` for partner routes) —
  delete the one entry that request would read;
* ``order=<id>`` — everything that could show the order (its entry, every list);
* ``all=1`` — everything.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from gateway.cache.backends import CacheBackendError
from gateway.cache.invalidation import change_versions
from gateway.cache.keys import Uncacheable, cache_key
from gateway.cache.service import ResponseCache
from gateway.errors import GatewayError
from gateway.request_keys import STATE_KEY
from resilience.problem import problem_response


def _bad(detail: str, status: int = 400) -> web.Response:
    return problem_response(status=status, title="Bad purge request" if status < 500 else "Cache unavailable",
                            type_slug="bad-purge" if status < 500 else "cache-unavailable",
                            detail=detail, request_id=None)


async def _purge_key(request: web.Request, cache: ResponseCache, raw: str) -> dict[str, Any] | web.Response:
    try:
        url = URL(raw)
    except ValueError:
        return _bad(f"key {raw[:200]!r} is not a path?query")
    listener = request.query.get("listener", "internal")
    table = request.app[STATE_KEY].tables.get(listener)
    if table is None:
        return _bad(f"unknown listener {listener!r}")
    try:
        route = table.match("GET", url.path)
    except GatewayError as exc:
        return _bad(f"key {raw!r}: {exc.detail}")
    if route.cache is None:
        return _bad(f"route {route.name!r} has no cache policy")
    try:
        key = cache_key(keys=cache.keys, route=route.name, policy=route.cache, prefix=route.prefix,
                        path=url.path, query=url.query, partner=request.query.get("partner"))
    except Uncacheable as exc:
        return _bad(f"key {raw!r} is never cached ({exc})")
    deleted = await cache.backend.delete(key.entry)
    if deleted:
        cache.invalidator.count("purge_key")
    return {"key": key.entry, "deleted": deleted}


def purge_handler(cache: ResponseCache) -> Any:
    """The ``POST /cache/purge`` handler bound to the server's cache."""

    async def purge(request: web.Request) -> web.Response:
        q = request.query
        try:
            if "route" in q:
                if q["route"] not in {r.name for r in request.app[STATE_KEY].config.routes}:
                    return _bad(f"unknown route {q['route']!r}", 404)
                await cache.invalidator.route(q["route"])
                return web.json_response({"route": q["route"], "invalidated": True})
            if "order" in q:
                if not q["order"].isdecimal():
                    return _bad("order must be an order id")
                await cache.invalidator.bump(change_versions(cache.keys, int(q["order"]), None, None),
                                             "purge_order")
                return web.json_response({"order": int(q["order"]), "invalidated": True})
            if q.get("all") in ("1", "true"):
                await cache.invalidator.everything("purge_all")
                return web.json_response({"all": True, "invalidated": True})
            if "key" in q:
                result = await _purge_key(request, cache, q["key"])
                return result if isinstance(result, web.Response) else web.json_response(result)
        except CacheBackendError as exc:
            return _bad(str(exc), 503)
        return _bad("give one of route=, key=, order=, all=1")

    return purge
