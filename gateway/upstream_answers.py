"""Reading cluster answers whole, and their errors as our problem+json.

Every error a client sees carries its request id (README, docs/partner-api.md): an upstream
``4xx``/``5xx`` that is problem+json gets ``request_id`` (and ``instance`` when it has none of
ours) added; anything else (text, HTML, JSON of the legacy's own shape) is wrapped in a problem
whose ``detail`` is the upstream's text on the internal listener and a generic sentence on the
external one (no internal paths, hosts or stack traces leave). Upstream headers such as
``Retry-After`` and ``WWW-Authenticate`` are kept. Only error answers pay for this.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from gateway.errors import UpstreamResponseTooLarge
from gateway.upstreams.transport import UpstreamResponse
from resilience.problem import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

#: An upstream error body larger than this is replaced, not relayed (errors are small).
ERROR_READ_CAP = 64 * 1024
_DROP = ("Content-Type", "Content-Length", "Content-Encoding")


async def read_whole(upstream: UpstreamResponse, cap: int) -> bytes:
    """The whole body, whatever its framing, or UpstreamResponseTooLarge past ``cap`` bytes (the
    cluster's overall timeout bounds a slow drip)."""
    length = upstream.content_length
    if length is not None and length > cap:
        raise UpstreamResponseTooLarge(f"the answer of {length} bytes exceeds the {cap} bytes read here")
    parts: list[bytes] = []
    size = 0
    async for chunk in upstream.iter_any():
        size += len(chunk)
        if size > cap:
            raise UpstreamResponseTooLarge(f"the answer exceeds the {cap} bytes read here")
        parts.append(chunk)
    return b"".join(parts)


def _problem_of(body: bytes | None, content_type: str) -> dict[str, Any] | None:
    if body is None or content_type != PROBLEM_CONTENT_TYPE:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def error_answer(upstream: UpstreamResponse, headers: CIMultiDict[str], request_id: str, *,
                       public: bool) -> web.Response:
    """The client's answer for an upstream error (status >= 400), carrying ``request_id``."""
    try:
        body: bytes | None = await read_whole(upstream, ERROR_READ_CAP)
    except UpstreamResponseTooLarge:
        body = None
    status = upstream.status
    problem = _problem_of(body, upstream.content_type)
    if problem is None:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        text = (body or b"").decode("utf-8", "replace").strip()[:500]
        problem = {"type": PROBLEM_BASE + "upstream-answer", "title": phrase, "status": status,
                   "detail": text if text and not public else
                   f"The service behind the gateway answered {status} {phrase}."}
    if not str(problem.get("instance", "")).startswith("urn:request:"):
        problem["instance"] = f"urn:request:{request_id}"
    problem["request_id"] = request_id
    for name in _DROP:
        headers.popall(name, None)
    headers["X-Request-ID"] = request_id
    return web.Response(status=status, headers=headers, body=orjson.dumps(problem),
                        content_type=PROBLEM_CONTENT_TYPE)
