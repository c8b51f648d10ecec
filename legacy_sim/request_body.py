"""Reading request bodies with a size limit, and JSON objects from them."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from legacy_sim.problem import Problem


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read the whole body, answering 413 as soon as it exceeds ``limit`` bytes.

    The declared ``Content-Length`` is checked first so an oversized upload is
    refused without being read; chunked bodies are counted while streaming.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Problem(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    """Parse the body as a JSON object: 400 when malformed, 422 when not an object."""
    raw = await read_body(request, limit)
    if not raw.strip():
        raise Problem(400, "request body is empty; a JSON object is expected")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "malformed JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise Problem(422, f"body must be a JSON object, not {type(value).__name__}",
                      invalid_params=[{"name": "body", "reason": "must be a JSON object"}])
    return value
