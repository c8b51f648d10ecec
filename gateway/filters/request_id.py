"""Request id filter: generate ``X-Request-ID`` (or accept a sane one from trusted clients).

The one implementation is :mod:`telemetry.request_id` (the sidecars use it too).
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from gateway.request_keys import REQUEST_ID_KEY
from telemetry.request_id import request_id_filter as _request_id_filter


def request_id_filter(*, trust_inbound: bool) -> Middleware:
    """Outermost filter. ``trust_inbound`` (internal listener only) keeps a well-formed inbound id."""
    return _request_id_filter(key=REQUEST_ID_KEY, trust_inbound=trust_inbound)
