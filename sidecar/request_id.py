"""Request id: keep the caller's well-formed ``X-Request-ID`` (the gateway's), else make one.

The gateway's rules (:mod:`telemetry.request_id`); a sidecar trusts its callers like the
gateway's internal listener.
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from sidecar.request_keys import REQUEST_ID
from telemetry.request_id import request_id_filter as _request_id_filter


def request_id_filter() -> Middleware:
    """Outermost middleware: sets ``REQUEST_ID``, the log context and the response header."""
    return _request_id_filter(key=REQUEST_ID, trust_inbound=True)
