"""RFC 9457 problem details (`application/problem+json`) for every error the gateway or a sidecar answers.

One body shape, one type URI base and one ``Server`` name for both deployables: a partner or an
operator reads a sidecar's 502 as they read the gateway's.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://mes-edge.dev/problems/"
#: The ``Server`` of every answer, proxied or made here (one product name, no version).
SERVER_HEADER = "mes-edge"


def problem_response(*, status: int, title: str, type_slug: str, detail: str, request_id: str | None,
                     retry_after: float | None = None, extra: dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None) -> web.Response:
    """Build the problem+json response; ``instance`` carries the request id (our contract)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": f"urn:request:{request_id}" if request_id else None,
        "request_id": request_id,
    }
    if extra:
        body.update(extra)
    out_headers = dict(headers or {})
    out_headers["Server"] = SERVER_HEADER
    if request_id:
        out_headers["X-Request-ID"] = request_id
    if retry_after is not None:
        out_headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return web.Response(status=status, body=json.dumps(body).encode(), headers=out_headers,
                        content_type=PROBLEM_CONTENT_TYPE)
