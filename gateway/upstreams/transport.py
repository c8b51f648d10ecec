"""How a cluster reaches one endpoint: the transport interface, its response and its errors.

A cluster holds one ``Transport`` per endpoint and knows nothing else about the wire:
``send`` one request, get an ``UpstreamResponse`` whose body streams, ``aclose`` at the end
(httpx's ``AsyncBaseTransport`` is the model). Today's transport is the pooled HTTP/1.1
client of ``gateway.upstreams.http1``; a test double or another client implements the same
two methods and raises the errors below.

The errors are the transport's vocabulary, not the gateway's: the cluster translates them at
its edge (``Cluster.request``) into ``gateway.errors`` (``UpstreamConnectError``,
``ConnectTimeout``, ``UpstreamTimeout``, ``UpstreamError``), so nothing above the cluster
catches or imports them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Protocol

from multidict import CIMultiDict

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "PayloadError",
    "ProtocolError",
    "ReadTimeout",
    "ServerDisconnected",
    "Transport",
    "TransportError",
    "UpstreamResponse",
]


class TransportError(Exception):
    """Base of every error a transport raises.

    ``request_sent`` is False only when no byte of the request was written to the endpoint's
    connection, so the endpoint cannot have seen it (a connect failure, or a connection found
    closed before the write): a retry elsewhere then adds no load upstream and is safe for any
    method. True whenever the endpoint may have seen the request, even partly.
    """

    request_sent: bool = True


class ConnectError(TransportError):
    """The TCP (or TLS) connection could not be opened; ``os_error`` says why. Nothing was sent."""

    request_sent = False

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        super().__init__(message)
        self.os_error = os_error


class ConnectTimeout(ConnectError, TimeoutError):
    """The connection was not established within the connect timeout."""


class ReadTimeout(TransportError, TimeoutError):
    """No response bytes within the read timeout (headers, or between body chunks)."""


class ServerDisconnected(TransportError):
    """The endpoint closed the connection before the response was complete.

    ``request_sent=False``: the connection was already closing when the request was about to be
    written, and nothing was written (Envoy's ``reset-before-request``).
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class ProtocolError(TransportError):
    """The endpoint sent something that is not valid HTTP."""


class PayloadError(TransportError):
    """The response body ended early or was malformed."""


class UpstreamResponse(Protocol):
    """Status, headers and the streamed body of one endpoint's answer (what ``Cluster.request`` yields).

    The body is read once, whole (``read``) or in the chunks it arrives in (``iter_any``);
    ``release`` hands the connection back and is the cluster's job, not the caller's.
    """

    @property
    def status(self) -> int: ...

    @property
    def reason(self) -> str: ...

    @property
    def headers(self) -> CIMultiDict[str]: ...

    @property
    def content_length(self) -> int | None:
        """The Content-Length header as an int, or None (chunked, or read until close)."""

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``application/octet-stream`` if absent)."""

    async def read(self) -> bytes:
        """The whole body."""

    def iter_any(self) -> AsyncIterator[bytes]:
        """The body in the chunks it arrives in."""

    def release(self) -> None:
        """Give the connection back (complete, keep-alive) or close it. Idempotent."""


class Transport(Protocol):
    """Sends requests to one endpoint (a base URL)."""

    async def send(self, method: str, path_qs: str, headers: Mapping[str, str],
                   body: bytes | AsyncIterable[bytes] | None, *,
                   connect_timeout: float | None, read_timeout: float | None) -> UpstreamResponse:
        """Send one request; the caller must ``release()`` the response.

        ``path_qs`` is appended to the endpoint's base URL as is. Raises ``TransportError``
        (or ``OSError``) for what went wrong on the way, ``ValueError`` for a request that
        cannot be written safely; an error raised by a streamed ``body`` propagates unchanged.
        """

    async def aclose(self) -> None:
        """Close every connection; later ``send`` calls raise ``ConnectError``."""
