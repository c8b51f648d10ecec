"""Answers built from the cache: RFC 9211 ``Cache-Status``, ``Age``, strong ``ETag``, 304s.

``Cache-Status`` values (cache name ``mes-edge``):

* ``hit; ttl=<s>`` — fresh; ``hit; stale; ttl=-<s>`` — expired, served while one refresh runs;
  ``hit; detail=collapsed`` — a concurrent miss that got another request's upstream answer;
* ``fwd=uri-miss`` (nothing stored), ``fwd=miss; detail=invalidated`` (stored under older
  versions), ``fwd=stale`` (expired beyond the stale window), ``fwd=request`` (client
  ``no-cache``), ``fwd=bypass; detail=<why>`` — each with ``fwd-status`` and ``stored`` when stored;
* ``fwd=stale; fwd-status=503; stale; detail=stale-if-error`` — the MES failed, the stored
  answer was served instead.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway.cache.entry import Entry, etag_matches

CACHE_NAME = "mes-edge"
_VALIDATOR_HEADERS = ("Cache-Control", "Content-Location", "Date", "Expires", "Vary")


def cache_status(params: str) -> str:
    return f"{CACHE_NAME}; {params}"


def ttl_param(ttl: float, age: float) -> str:
    """RFC 9211 ``ttl``: remaining freshness in seconds (negative once stale)."""
    return f"ttl={round(ttl - age)}"


def from_entry(request: web.Request, entry: Entry, *, status_params: str, age: float) -> web.Response:
    """200 with the stored answer, or 304 when ``If-None-Match`` matches its ETag."""
    headers = CIMultiDict(entry.headers)
    headers["ETag"] = entry.etag
    headers["Age"] = str(int(age))
    headers["Cache-Status"] = cache_status(status_params)
    if etag_matches(request.headers.get("If-None-Match"), entry.etag):
        return not_modified(headers)
    return web.Response(status=200, headers=headers, body=entry.body)


def not_modified(headers: CIMultiDict[str]) -> web.Response:
    """304 keeps only the validator-related headers (RFC 9110 §15.4.5)."""
    keep = CIMultiDict((k, v) for k, v in headers.items()
                       if k in _VALIDATOR_HEADERS or k.lower() in ("etag", "age", "cache-status"))
    return web.Response(status=304, headers=keep)


def from_shared(request: web.Request, status: int, headers: CIMultiDict[str], body: bytes,
                entry: Entry | None, *, status_params: str) -> web.Response:
    """A collapsed waiter's copy of the leader's answer."""
    out = CIMultiDict(headers)
    out.popall("Content-Length", None)
    out["Cache-Status"] = cache_status(status_params)
    if entry is not None:
        out["ETag"] = entry.etag
        if etag_matches(request.headers.get("If-None-Match"), entry.etag):
            return not_modified(out)
    return web.Response(status=status, headers=out, body=body)


def finish_fetched(request: web.Request, response: web.StreamResponse, entry: Entry | None, *,
                   status_params: str) -> web.StreamResponse:
    """The leader's own answer: tag it; 304 when it was stored and the client already has it."""
    if response.prepared:
        return response
    response.headers["Cache-Status"] = cache_status(status_params)
    if entry is not None:
        response.headers["ETag"] = entry.etag
        if etag_matches(request.headers.get("If-None-Match"), entry.etag):
            return not_modified(CIMultiDict(response.headers))
    return response
