"""Reading a quote upload: a binary STL body, or ``multipart/form-data`` with a ``model`` part.

The size limit is the route's ``max_body_bytes`` and is enforced while reading (413 before the
whole body arrived); each read waits at most the route's ``body_timeout`` (408). In a multipart
upload **every byte of the body counts** against that limit — preamble, part headers, boundaries,
every field — because aiohttp's multipart reader consumes whatever it is given (a form of 20 MB
of small fields was accepted on a 1 MiB route before). Only the known fields are accepted; a
missing boundary or a malformed form is a 400 problem+json. Nothing is parsed here: the caller
validates the geometry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.errors import PayloadTooLarge, RequestError, RequestTimeout, UnsupportedMediaType
from gateway.route_table import Route

STL_TYPES = frozenset({"model/stl", "application/octet-stream", "application/sla", "model/x.stl-binary",
                       "model/x.stl-ascii", "application/vnd.ms-pki.stl"})
MODEL_FIELDS = frozenset({"model", "file"})  # "file": what most HTML forms call it
TEXT_FIELDS = frozenset({"material", "callback_url"})
KNOWN_FIELDS = MODEL_FIELDS | TEXT_FIELDS
_FIELD_LIMIT = 4096  # multipart text fields (material, callback_url)
_PART_HEADER_BYTES = 1024  # one part header line (Content-Disposition, Content-Type)
_PART_HEADERS = 8  # header lines of one part
_T = TypeVar("_T")


class MalformedUpload(RequestError):
    """A multipart upload without a boundary, with a broken structure, or with unknown fields."""

    status = 400
    title = "Malformed upload"
    type_slug = "malformed-upload"


@dataclass(slots=True)
class Upload:
    """The model bytes and any form fields sent with them."""

    model: bytes
    fields: dict[str, str] = field(default_factory=dict)


class _BodyBudget:
    """A view of the request body stream that fails once more than ``limit`` bytes arrived.

    aiohttp's multipart reader reads preamble, part headers and skipped parts itself; handing
    it this view makes each of those reads count too. The count is the stream's own total of
    received body bytes, so pushing data back (``unread_data``) never counts twice.
    """

    def __init__(self, stream: StreamReader, limit: int, idle: float) -> None:
        self._stream = stream
        self._limit = limit
        self._idle = idle

    async def _check(self, pending: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._idle):
                result = await pending
        except TimeoutError:
            raise RequestTimeout(f"request body not received within {self._idle} s") from None
        if self._stream.total_bytes > self._limit:
            raise PayloadTooLarge(f"the multipart body exceeds {self._limit} bytes")
        return result

    async def read(self, n: int = -1) -> bytes:
        return await self._check(self._stream.read(n))

    async def readany(self) -> bytes:
        return await self._check(self._stream.readany())

    async def readchunk(self) -> tuple[bytes, bool]:
        return await self._check(self._stream.readchunk())

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        return await self._check(self._stream.readline(max_line_length=max_line_length))

    def __getattr__(self, name: str) -> Any:  # at_eof, unread_data, …
        return getattr(self._stream, name)


async def _read_limited(stream: Any, limit: int, idle: float) -> bytes:
    # one growing buffer (realloc grows big ones in place): no chunk list + join, which held
    # two copies of a model at the end of every read (bench/hostile_upload.py: gateway RSS)
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await stream.readany() if hasattr(stream, "readany") else await stream.read_chunk()
        except TimeoutError:
            raise RequestTimeout(f"request body not received within {idle} s") from None
        if not chunk:
            return body  # type: ignore[return-value]  # bytes-like; hashlib, pickle and redis take it
        if len(body) + len(chunk) > limit:
            raise PayloadTooLarge(f"the model exceeds {limit} bytes")
        body += chunk


def _multipart_reader(request: web.Request, limit: int, idle: float) -> MultipartReader:
    try:
        return MultipartReader(request.headers, cast(StreamReader, _BodyBudget(request.content, limit, idle)),
                               max_field_size=_PART_HEADER_BYTES, max_headers=_PART_HEADERS)
    except (ValueError, AssertionError) as exc:  # no or bad boundary parameter
        raise MalformedUpload(f"multipart/form-data needs a valid boundary parameter: {exc}") from None


async def _read_form(request: web.Request, route: Route) -> Upload:
    limit = route.max_body_bytes
    reader = _multipart_reader(request, limit, route.body_timeout)
    upload = Upload(b"")
    seen: set[str] = set()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            raise MalformedUpload("nested multipart parts are not accepted")
        name = part.name or ""
        if name not in KNOWN_FIELDS:
            raise MalformedUpload(f"multipart field {name[:64]!r} is not accepted; fields: "
                                  f"{', '.join(sorted(KNOWN_FIELDS))}")
        if name in seen or (name in MODEL_FIELDS and seen & MODEL_FIELDS):
            raise MalformedUpload(f"multipart field {name!r} is sent more than once")
        seen.add(name)
        if name in MODEL_FIELDS:
            upload.model = await _read_limited(part, limit, route.body_timeout)
        else:
            value = await _read_limited(part, _FIELD_LIMIT, route.body_timeout)
            upload.fields[name] = value.decode("utf-8", "replace").strip()
    return upload


async def read_upload(request: web.Request, route: Route) -> Upload:
    """The upload of ``request`` under ``route``'s limits."""
    limit = route.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds {limit}")
    if request.content_type in STL_TYPES:
        return Upload(await _read_limited(request.content, limit, route.body_timeout))
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(f"content type {request.content_type!r}: send the STL as model/stl, "
                                   "application/octet-stream or a multipart/form-data 'model' part")
    try:
        return await _read_form(request, route)
    except (ValueError, AssertionError, HttpProcessingError) as exc:  # a broken multipart structure
        raise MalformedUpload(f"malformed multipart/form-data body: {str(exc)[:200]}") from None
