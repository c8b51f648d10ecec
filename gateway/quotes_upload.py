"""Reading a quote upload: a binary STL body, or ``multipart/form-data`` with a ``model`` part.

The size limit is the route's ``max_body_bytes`` and is enforced while reading (413 before the
whole body arrived); each read waits at most the route's ``body_timeout`` (408). Nothing is
parsed here: the caller validates the geometry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from gateway.errors import PayloadTooLarge, RequestError, RequestTimeout
from gateway.routing import Route

STL_TYPES = frozenset({"model/stl", "application/octet-stream", "application/sla", "model/x.stl-binary",
                       "model/x.stl-ascii", "application/vnd.ms-pki.stl"})
_FIELD_LIMIT = 4096  # multipart text fields (material, callback_url)


class UnsupportedMediaType(RequestError):
    """The upload is neither an STL body nor multipart/form-data."""

    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


@dataclass(slots=True)
class Upload:
    """The model bytes and any form fields sent with them."""

    model: bytes
    fields: dict[str, str] = field(default_factory=dict)


async def _read_limited(stream: Any, limit: int, idle: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await stream.readany() if hasattr(stream, "readany") else await stream.read_chunk()
        except TimeoutError:
            raise RequestTimeout(f"request body not received within {idle} s") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the model exceeds {limit} bytes")
        chunks.append(chunk)


async def read_upload(request: web.Request, route: Route) -> Upload:
    """The upload of ``request`` under ``route``'s limits."""
    limit = route.max_body_bytes
    if request.content_length is not None and request.content_length > limit + _FIELD_LIMIT * 4:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds {limit}")
    if request.content_type in STL_TYPES:
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds {limit}")
        return Upload(await _read_limited(request.content, limit, route.body_timeout))
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(f"content type {request.content_type!r}: send the STL as model/stl, "
                                   "application/octet-stream or a multipart/form-data 'model' part")
    upload = Upload(b"")
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name in ("model", "file"):
            upload.model = await _read_limited(part, limit, route.body_timeout)
        elif part.name:
            value = await _read_limited(part, _FIELD_LIMIT, route.body_timeout)
            upload.fields[part.name] = value.decode("utf-8", "replace").strip()
    return upload
