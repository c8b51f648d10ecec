"""Answers of the partner order API: projections as JSON and RFC 9457 problems (ours, never the MES's).

Used by ``gateway.filters.partner_scope``; upstream problems are re-issued with our ``type`` URIs
and request id, keeping only ``detail`` and ``invalid_params`` (no internal paths leak).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from gateway.partner_api.orders import upstream_problem
from gateway.request_keys import REQUEST_ID_KEY
from resilience.problem import problem_response

_SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 408: "request-timeout",
          409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
          422: "validation-failed"}
_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 408: "Request timeout",
           409: "Conflict", 413: "Payload too large", 415: "Unsupported media type",
           422: "Unprocessable content"}
_DROP = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding", "location"})


class BadUpstream(Exception):
    """The MES answered 2xx with something that is not the expected JSON."""


def object_of(data: bytes) -> dict[str, Any]:
    """``data`` parsed as a JSON object; :class:`BadUpstream` otherwise."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadUpstream("not JSON") from None
    if not isinstance(value, dict):
        raise BadUpstream("not a JSON object")
    return value


def problem(request: web.Request, status: int, detail: str, *, params: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> web.Response:
    """Our problem+json for ``status`` (``invalid_params`` as in RFC 9457 §3 when given)."""
    slug = _SLUGS.get(status, "upstream-error" if status >= 500 else "bad-request")
    title = _TITLES.get(status, "Order service unavailable" if status >= 500 else "Bad request")
    return problem_response(status=status, title=title, type_slug=slug, detail=detail,
                            request_id=request.get(REQUEST_ID_KEY), headers=headers,
                            extra={"invalid_params": params} if params else None)


def not_found(request: web.Request, order_id: int | None) -> web.Response:
    """The one 404 for unknown, foreign and malformed ids alike."""
    return problem(request, 404, f"No order {order_id} for this partner." if order_id is not None
                   else "Not part of the partner API.")


def json_answer(upstream: web.StreamResponse, data: Any, *, location: str | None = None) -> web.Response:
    """``data`` as JSON with the upstream status and headers (framing/Location replaced)."""
    headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _DROP)
    if location is not None:
        headers["Location"] = location
    return web.Response(status=upstream.status, headers=headers, body=orjson.dumps(data),
                        content_type="application/json")


def refusal(request: web.Request, upstream: web.StreamResponse, body: bytes) -> web.StreamResponse:
    """An upstream error, always re-issued as our problem+json: whatever its ``type`` says (a
    sidecar's problems use our type URIs too, and the MES controls the body), nothing of it but a
    short ``detail`` and well-formed ``invalid_params`` of a 4xx reaches the partner."""
    if upstream.status >= 500:  # 503/504 keep their meaning (and Retry-After), anything else is 502
        after = upstream.headers.get("Retry-After")
        status = upstream.status if upstream.status in (502, 503, 504) else 502
        return problem(request, status, "The order service is unavailable; try again later.",
                       headers={"Retry-After": after} if after else None)
    detail, params = upstream_problem(body)
    return problem(request, upstream.status, detail, params=params)
