"""Reading a request body the gateway checks itself (a JSON order): bounded in size and time."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.errors import PayloadTooLarge, RequestTimeout


async def read_json_body(request: web.Request, limit: int, body_timeout: float) -> bytes:
    """The whole body, at most ``limit`` bytes (413, also up front from ``Content-Length``), all of
    it within ``body_timeout`` seconds (408)."""
    too_large = f"the body must be at most {limit} bytes of JSON"
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(too_large)
    content = request.content
    if content.is_eof():  # all of it arrived with the headers (a small JSON body): take it, no timer
        raw = content.read_nowait()
        if len(raw) > limit:
            raise PayloadTooLarge(too_large)
        return raw
    chunks, size = [], 0
    try:
        async with asyncio.timeout(body_timeout):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(too_large)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout("request body not received in time") from None
    return b"".join(chunks)
