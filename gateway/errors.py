"""One exception tree for the gateway, ordered by failure phase.

Every error a client can see maps to exactly one RFC 9457 problem type via
``status`` / ``title`` / ``type_slug``; library errors (aiohttp, asyncio) are
translated into these at the edge (``gateway.upstreams``) and never leak out.
"""

from __future__ import annotations

# the one class of every package's config errors (not a GatewayError: never answered to a client)
from typing import Any

from configkit import ConfigError as ConfigError
from resilience import shedding


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""

    status: int = 500
    title: str = "Internal gateway error"
    type_slug: str = "internal"
    #: Extra response headers of this error's answer (e.g. ``Allow`` on 405).
    headers: dict[str, str] | None = None
    #: Extension members of this error's problem body (e.g. ``invalid_params``).
    extra: dict[str, Any] | None = None

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.retry_after = retry_after


class RequestError(GatewayError):
    """The client's request is unacceptable."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class RouteNotFound(RequestError):
    """No route on this listener matches the path."""

    status = 404
    title = "Not found"
    type_slug = "not-found"


class MethodNotAllowed(RequestError):
    """A route matches the path but not the method; ``allow`` lists the methods that it accepts."""

    status = 405
    title = "Method not allowed"
    type_slug = "method-not-allowed"

    def __init__(self, detail: str = "", *, allow: str) -> None:
        super().__init__(detail)
        self.headers = {"Allow": allow}


class RequestInvalid(RequestError):
    """The request violates the partner API document: 400 when it is malformed (unparsable JSON,
    unknown or repeated parameter), 404 when only a path parameter names nothing that can exist,
    422 otherwise; ``invalid_params`` lists every violation (``gateway/partner_api/violations.py``)."""

    status = 422
    title = "Unprocessable content"
    type_slug = "validation-failed"

    def __init__(self, detail: str, *, params: list[dict[str, str]], malformed: bool,
                 path_only: bool) -> None:
        super().__init__(detail)
        if malformed:
            self.status, self.title, self.type_slug = 400, "Bad request", "bad-request"
        elif path_only:
            self.status, self.title, self.type_slug = 404, "Not found", "not-found"
        self.extra = {"invalid_params": params}


class UnsupportedMediaType(RequestError):
    """A request body in a media type the operation does not take."""

    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class PayloadTooLarge(RequestError):
    """The request body exceeds the route's limit."""

    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class UnsupportedContentEncoding(RequestError):
    """A request body with a ``Content-Encoding`` on a route whose body the gateway reads itself."""

    status = 415
    title = "Unsupported content encoding"
    type_slug = "unsupported-content-encoding"
    headers = {"Accept-Encoding": "identity"}  # RFC 9110 §12.5.3


class RequestTimeout(RequestError):
    """The client did not send its request body in time."""

    status = 408
    title = "Request timeout"
    type_slug = "request-timeout"


class Unauthorized(RequestError):
    """No valid API key: missing, unknown, malformed or revoked."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(RequestError):
    """A valid API key without the scope this route and method need."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class RateLimited(RequestError):
    """The partner exceeded one or more of its rate-limit windows."""

    status = 429
    title = "Too many requests"
    type_slug = "quota-exceeded"


class RateLimitUnavailable(GatewayError):
    """The route fails closed and the shared rate-limit store is unreachable."""

    status = 503
    title = "Temporary reduced capacity"
    type_slug = "temporary-reduced-capacity"


class UpstreamError(GatewayError):
    """Something went wrong between the gateway and a cluster endpoint."""

    status = 502
    title = "Bad gateway"
    type_slug = "upstream-error"


class UpstreamConnectError(UpstreamError):
    """No connection could be made to the endpoint."""

    title = "Upstream connection failed"
    type_slug = "upstream-connect"


class UpstreamTimeout(UpstreamError):
    """The endpoint did not answer within the per-try or overall timeout."""

    status = 504
    title = "Upstream timeout"
    type_slug = "upstream-timeout"


class ConnectTimeout(UpstreamTimeout):
    """The connection to the endpoint was not established in time."""

    title = "Upstream connect timeout"
    type_slug = "upstream-connect-timeout"


class UpstreamResponseTooLarge(UpstreamError):
    """An answer the gateway must read whole (to check it) exceeds the size it reads."""

    title = "Upstream answer too large"
    type_slug = "upstream-response-too-large"


class NoHealthyEndpoint(UpstreamError):
    """Every endpoint of the cluster is unhealthy or ejected: 503 with ``Retry-After``.

    Like every 503 of the gateway it says when to come back (the contract in
    ``docs/architecture.md``): about one health-check cycle, the time an endpoint needs to be
    taken back (``interval`` 2 s x ``healthy_threshold`` 2 in the shipped config).
    """

    status = 503
    title = "No healthy upstream"
    type_slug = "no-healthy-upstream"
    RETRY_AFTER = 5.0

    def __init__(self, detail: str = "", *, retry_after: float | None = RETRY_AFTER) -> None:
        super().__init__(detail, retry_after=retry_after)


class CircuitOpen(UpstreamError):
    """The cluster's circuit breaker rejected the request (too many in flight/pending)."""

    status = 503
    title = "Upstream overloaded"
    type_slug = "circuit-open"


class LoadShed(UpstreamError, shedding.LoadShed):
    """The cluster's adaptive concurrency limiter shed the request (queue full, wait expired, evicted).

    ``resilience.shedding.LoadShed`` as the gateway answers it: 503 ``load-shed`` with
    ``Retry-After``, and an ``UpstreamError`` (a cached route may answer stale-if-error).
    The clusters' limiters raise this class (``AdaptiveLimiter(shed_error=LoadShed)``).
    """

    status = 503
    title = "Upstream overloaded"
    type_slug = "load-shed"

    def __init__(self, detail: str = "", *, retry_after: float | None = shedding.RETRY_AFTER,
                 reason: str = "queue_full") -> None:
        super().__init__(detail, retry_after=retry_after)
        #: Why: one of ``resilience.shedding.SHED_REASONS`` (the metric label).
        self.reason = reason
