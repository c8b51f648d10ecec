"""Request id filter: generate ``X-Request-ID`` (or accept a sane one from trusted clients)."""

from __future__ import annotations

import os
import random
import re

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.request_keys import REQUEST_ID_KEY
from telemetry.context import request_id_var

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


_random = random.Random(os.urandom(16))


def new_request_id() -> str:
    """128 random bits as 32 hex characters.

    A correlation id, not a secret: a seeded PRNG avoids a getrandom() syscall per request.
    """
    return f"{_random.getrandbits(128):032x}"


def request_id_filter(*, trust_inbound: bool) -> Middleware:
    """Outermost filter. ``trust_inbound`` (internal listener only) keeps a well-formed inbound id."""

    @web.middleware
    async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get("X-Request-ID") if trust_inbound else None
        if rid is None or not _SANE_ID.match(rid):
            rid = new_request_id()
        request[REQUEST_ID_KEY] = rid
        token = request_id_var.set(rid)
        try:
            response = await handler(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    return request_id
