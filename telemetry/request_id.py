"""Request correlation: every request gets one ``X-Request-ID`` (the gateway's and the sidecars').

The id is the caller's when the caller is trusted to send one (the gateway's internal listener,
a sidecar behind the gateway) and it is well formed; otherwise a new one. It is stored on the
request under the caller's key, set as the log context (:data:`telemetry.context.request_id_var`)
for the request and sent back in the response header.
"""

from __future__ import annotations

import os
import random
import re

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from telemetry.context import request_id_var

__all__ = ["HEADER", "is_well_formed", "new_request_id", "request_id_filter"]

HEADER = "X-Request-ID"
#: What an inbound id must look like to be kept: safe in a header, a log line and a URL.
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_random = random.Random(os.urandom(16))
#: a forked child must not repeat its parent's ids
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(16)))


def new_request_id() -> str:
    """128 random bits as 32 hex characters.

    A correlation id, not a secret: a seeded PRNG avoids a getrandom() syscall per request.
    """
    return f"{_random.getrandbits(128):032x}"


def is_well_formed(request_id: str) -> bool:
    """Whether an inbound id may be kept: 8-128 characters of ``A-Za-z0-9._:-``."""
    return _WELL_FORMED.match(request_id) is not None


def request_id_filter(*, key: web.RequestKey[str], trust_inbound: bool) -> Middleware:
    """Outermost filter: the request's id under ``key``, in the log context and in the response.

    ``trust_inbound`` keeps a well-formed inbound ``X-Request-ID``; without it every request
    gets a new id (an outsider must not choose what our logs correlate).
    """
    well_formed = _WELL_FORMED.match

    @web.middleware
    async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get(HEADER) if trust_inbound else None
        if rid is None or not well_formed(rid):
            rid = new_request_id()
        request[key] = rid
        token = request_id_var.set(rid)
        try:
            response = await handler(request)
        finally:
            request_id_var.reset(token)
        if not response.prepared:  # a streamed answer has sent its headers already
            response.headers[HEADER] = rid
        return response

    return request_id
