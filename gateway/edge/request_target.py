"""One normalised request target: what routing, the filters and the cluster all see.

aiohttp decodes ``request.path`` (``%2F`` becomes ``/``) while ``request.raw_path`` keeps the
client's bytes — and an absolute-form target (``GET http://host/x``) has a ``raw_path`` that is
not a path at all. If routing read one and the proxy sent the other, ``/partner/v1/orders/1%2F..``
could match one route and reach the MES as another path. So before routing, the target is
checked and, when needed, rewritten once into its normal form (RFC 3986 §6.2.2: percent-decoded
where that changes nothing, dot-segments removed, re-encoded in upper-case UTF-8); the request is
cloned with it, so ``path`` and ``raw_path`` agree for everything after.

Refused with 400 problem+json on every listener: the asterisk and authority forms, ``%2F``
(encoded ``/``), ``%5C``/``\\`` (a ``\\`` some servers read as ``/``), ``%00`` and
percent-encoding that is not UTF-8. On a *strict* listener (the external one) also absolute-form
targets, ``%2E``/``%3F`` (encoded ``.``/``?``) and dot-segments (``/./``, ``/../``): nothing a
partner legitimately sends. The internal listener resolves dot-segments and takes the path of an
absolute-form target, as NGINX does.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from yarl import URL

from gateway.errors import RequestError

#: Characters left as they are when the path is re-encoded (RFC 3986 pchar + "/").
_SAFE = "/:@!$&'()*+,;=-._~"
_ALWAYS_REFUSED = re.compile(r"%(?:2[fF]|5[cC]|00)|\\")
_STRICT_REFUSED = re.compile(r"%(?:2[eE]|3[fF])")


class BadRequestTarget(RequestError):
    """The request target is not one the gateway forwards (400)."""

    type_slug = "bad-request-target"


def needs_normalising(raw: str) -> bool:
    """False for the common, already-normal target (the hot path stops here)."""
    return not raw.startswith("/") or "%" in raw or "/." in raw or "\\" in raw or not raw.isascii()


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = path.endswith(("/.", "/.."))
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def normalise(raw: str, *, strict: bool) -> str:
    """The normal form of the target ``raw`` (path + ``?query``), or BadRequestTarget."""
    if not raw.startswith("/"):
        if strict or raw == "*":
            raise BadRequestTarget("only origin-form request targets (/path?query) are accepted here")
        try:
            url = URL(raw, encoded=True)
        except ValueError:
            raise BadRequestTarget("the request target is not a URL") from None
        if not url.absolute or url.scheme not in ("http", "https"):
            raise BadRequestTarget("only origin-form and http(s) absolute-form targets are accepted")
        raw = url.raw_path_qs or "/"
    path, sep, query = raw.partition("?")
    if _ALWAYS_REFUSED.search(path):
        raise BadRequestTarget("encoded '/', '\\\\' or NUL in the path are not accepted")
    if strict and _STRICT_REFUSED.search(path):
        raise BadRequestTarget("encoded '.' or '?' in the path are not accepted")
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise BadRequestTarget("the path's percent-encoding is not UTF-8") from None
    segments = decoded.split("/")
    if "." in segments or ".." in segments:
        if strict:
            raise BadRequestTarget("dot-segments ('.', '..') in the path are not accepted")
        decoded = _remove_dot_segments(decoded)
    return quote(decoded, safe=_SAFE) + sep + query
