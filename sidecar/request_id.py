"""Request id: keep the caller's well-formed ``X-Request-ID`` (the gateway's), else make one.

Same rules as the gateway's filter (which cannot be imported here without pulling in
the gateway's metrics); a sidecar trusts its callers like the gateway's internal listener.
"""

from __future__ import annotations

import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sidecar.keys import REQUEST_ID
from telemetry.context import request_id_var

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_filter() -> Middleware:
    """Outermost middleware: sets ``REQUEST_ID``, the log context and the response header."""

    @web.middleware
    async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get("X-Request-ID")
        if rid is None or not _SANE_ID.match(rid):
            rid = os.urandom(16).hex()
        request[REQUEST_ID] = rid
        token = request_id_var.set(rid)
        try:
            response = await handler(request)
        finally:
            request_id_var.reset(token)
        if not response.prepared:
            response.headers["X-Request-ID"] = rid
        return response

    return request_id
