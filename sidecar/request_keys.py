"""Typed app and request keys: data the sidecar's middlewares share with its proxy handler."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web
from opentelemetry.trace import TracerProvider

from sidecar.config import SidecarConfig
from sidecar.events import EventPublisher


@dataclass(kw_only=True)
class ProxyState:
    """What the proxy handler needs; the session is opened when the app starts.

    ``tracer_provider`` is the *effective* one (None: tracing off, no span work at all).
    """

    config: SidecarConfig
    tracer_provider: TracerProvider | None = None
    publisher: EventPublisher | None = None
    session: aiohttp.ClientSession | None = None


PROXY_STATE = web.AppKey("proxy_state", ProxyState)
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE = web.RequestKey("route", str)
#: Why the call to the legacy failed (connect_error, timeout, reset); unset when it did not.
UPSTREAM_ERROR = web.RequestKey("upstream_error", str)
