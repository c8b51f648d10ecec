"""The size of a request's whole header block, capped like NGINX's ``large_client_header_buffers``.

aiohttp limits each field (``max_header_bytes``, 8190 by default) and the number of fields, but
not their sum: 100 fields of 8 KB (800 KB) would otherwise be accepted and forwarded to the MES.
A block above the listener's ``max_header_block_bytes`` (32 KiB by default) or with more than
``max_header_fields`` fields (100) is answered 431 problem+json (RFC 6585) before routing.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import RequestError


class HeaderFieldsTooLarge(RequestError):
    """The request's header block is larger than the listener accepts (431)."""

    status = 431
    title = "Request header fields too large"
    type_slug = "header-fields-too-large"


def check_header_block(raw_headers: Sequence[tuple[bytes, bytes]], *, max_bytes: int, max_fields: int
                       ) -> None:
    """HeaderFieldsTooLarge when the block exceeds ``max_bytes`` (names + values) or ``max_fields``."""
    if len(raw_headers) > max_fields:
        raise HeaderFieldsTooLarge(f"at most {max_fields} header fields are accepted")
    size = 0
    for name, value in raw_headers:
        size += len(name) + len(value) + 4  # ": " and CRLF, as on the wire
    if size > max_bytes:
        raise HeaderFieldsTooLarge(f"the request's header fields exceed {max_bytes} bytes")
