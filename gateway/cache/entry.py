"""A stored response and the HTTP rules for storing it (RFC 9111, reduced to what the MES needs).

Stored: status 200 answers without ``Set-Cookie``, without ``Cache-Control: private``,
``no-store`` or ``no-cache``, without ``Vary: *``, with a body of at most the route's
``max_object_bytes``. The route's TTL decides freshness (the MES sends no caching headers).
Per-request headers (request id, trace context, date, server) are not stored.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

_NOT_STORED_HEADERS = frozenset({"x-request-id", "traceparent", "tracestate", "date", "server", "age",
                                 "content-length", "cache-status", "ratelimit", "ratelimit-policy",
                                 "transfer-encoding", "connection", "keep-alive"})
_UNCACHEABLE_DIRECTIVES = frozenset({"private", "no-store", "no-cache"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached response: headers, body, strong ETag, when it was stored, under which versions."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str
    stored_at: float  # Unix time (shared by every gateway instance)
    versions: tuple[int, ...]

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.stored_at)

    def encode(self) -> bytes:
        meta = orjson.dumps({"h": self.headers, "e": self.etag, "t": self.stored_at, "v": self.versions})
        return meta + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        meta, _, body = raw.partition(b"\n")
        data = orjson.loads(meta)
        return cls(headers=tuple((str(k), str(v)) for k, v in data["h"]), body=body, etag=data["e"],
                   stored_at=float(data["t"]), versions=tuple(int(v) for v in data["v"]))


def strong_etag(body: bytes) -> str:
    """A strong validator: 128 bits of BLAKE2b over the body, quoted."""
    digest = hashlib.blake2b(body, digest_size=16).digest()
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def _directives(value: str | None) -> set[str]:
    if not value:
        return set()
    return {part.strip().split("=", 1)[0].lower() for part in value.split(",") if part.strip()}


def not_storable_reason(status: int, headers: Mapping[str, str] | CIMultiDictProxy[str] | CIMultiDict[str],
                        body_size: int, max_bytes: int) -> str | None:
    """Why this upstream answer may not be stored (None: it may)."""
    if status != 200:
        return "status"
    if "Set-Cookie" in headers:
        return "set-cookie"
    if _directives(headers.get("Cache-Control")) & _UNCACHEABLE_DIRECTIVES:
        return "cache-control"
    if headers.get("Vary", "").strip() == "*":
        return "vary"
    if body_size > max_bytes:
        return "too-large"
    return None


def build_entry(headers: CIMultiDictProxy[str] | CIMultiDict[str], body: bytes,
                versions: tuple[int, ...]) -> Entry:
    """Keep the end-to-end headers worth replaying; an upstream ETag is kept, else ours."""
    kept = tuple((k, v) for k, v in headers.items() if k.lower() not in _NOT_STORED_HEADERS)
    etag = headers.get("ETag") or strong_etag(body)
    kept = tuple((k, v) for k, v in kept if k.lower() != "etag")
    return Entry(headers=kept, body=body, etag=etag, stored_at=time.time(), versions=versions)


def client_wants_fresh(headers: CIMultiDictProxy[str]) -> bool:
    """``Cache-Control: no-cache`` or ``max-age=0`` (or ``Pragma: no-cache``) from the client."""
    cc = headers.get("Cache-Control", "").lower().replace(" ", "")
    parts = set(cc.split(","))
    return "no-cache" in parts or "max-age=0" in parts or (not cc and headers.get("Pragma") == "no-cache")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison; ``*`` matches any current representation."""
    if not if_none_match:
        return False
    bare = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False
