"""The retry loop of one upstream request: pick an endpoint, send, record the outcome, maybe retry.

Retries happen only for requests with a ``bytes`` (or no) body, when the failure kind is in
``retry.retry_on`` (Envoy's names: ``connect-failure``, ``reset-before-request``, ``reset``,
``timeout``, ``5xx``, ``gateway-error``; ``reset`` covers ``reset-before-request`` as ``5xx``
covers ``gateway-error``) and attempts and time before the deadline remain. Each retry prefers
an endpoint not tried yet and first waits a full-jitter exponential backoff
(``resilience.backoff``: uniform in ``[0, min(backoff_max, backoff_base * 2**(n-1))]`` before
retry n). A retryable status on the last attempt is returned as is.

Two kinds of failed attempt, told apart by the transport (``TransportError.request_sent``):

- **not sent** -- the connection could not be opened (``connect-failure``) or was found closed
  before a byte was written (``reset-before-request``): the endpoint never saw the request, so
  a retry adds no load upstream and is safe for *any* method (Envoy's ``reset-before-request``,
  Go's ``nothingWrittenError``). It is bounded by ``attempts`` only, never refused by the retry
  budget, and counted in ``gateway_upstream_retries_unsent_total`` as well. So is a 502 carrying
  ``X-Mes-Edge-Not-Forwarded: connect-failure`` when the cluster has ``trust_not_forwarded``:
  a sidecar saying the legacy behind it refused the connection (``upstream-connect-failure``,
  retried when ``retry_on`` has ``connect-failure``). Only the header is read, never the body;
  without the option an endpoint's header changes nothing.
- **possibly seen** -- everything else: retried only for idempotent methods, and only while the
  cluster's retry budget allows (a request holds one budget slot from its first such retry on).

This is the cluster's edge: a transport error (``gateway.upstreams.transport``) is
translated here into the gateway's own (``UpstreamConnectError``, ``ConnectTimeout``,
``UpstreamTimeout``, ``UpstreamError``); it never escapes.

The loop drives its cluster only through the public attempt API of ``Cluster``
(``ClusterAttempts``): ``pick`` → ``transports[endpoint.url].send`` → ``record_attempt``, and
``try_retry``/``release_retry``/``count_retry`` for the budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Protocol

from multidict import CIMultiDict

from gateway import metrics
from gateway.errors import ConnectTimeout, GatewayError, UpstreamConnectError, UpstreamError, UpstreamTimeout
from gateway.upstreams import transport
from gateway.upstreams.config import ClusterConfig, RetryPolicy, TimeoutPolicy
from gateway.upstreams.endpoint import Endpoint
from gateway.upstreams.transport import Transport, TransportError, UpstreamResponse
from resilience.backoff import backoff_delay
from resilience.forwarding import NOT_FORWARDED_CONNECT_FAILURE, NOT_FORWARDED_HEADER

__all__ = ["IDEMPOTENT_METHODS", "ClusterAttempts", "RetryLoop"]

#: Methods a retry may send twice (RFC 9110 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Statuses a proxy in front of the endpoint would produce (``gateway-error`` in Envoy's terms).
_GATEWAY_STATUSES = frozenset({502, 503, 504})
#: retry_on names that cover a narrower one (as in Envoy).
_WIDER_KIND = {"gateway-error": "5xx", "reset-before-request": "reset",
               "upstream-connect-failure": "connect-failure"}
#: The kind of a trusted "never forwarded" 502 (the endpoint's own upstream refused the connect).
UPSTREAM_CONNECT_FAILURE = "upstream-connect-failure"


class ClusterAttempts(Protocol):
    """What the retry loop asks of its cluster: the attempt half of ``Cluster``'s public API."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> ClusterConfig: ...

    def now(self) -> float: ...

    def pick(self, hash_key: str | None, tried: list[Endpoint]) -> Endpoint: ...

    @property
    def transports(self) -> Mapping[str, Transport]: ...

    def record_attempt(
        self, endpoint: Endpoint, outcome: str, started: float, *, failed: bool, gateway: bool
    ) -> None: ...

    def try_retry(self) -> bool: ...

    def release_retry(self) -> None: ...

    def count_retry(self, reason: str, *, unsent: bool = False) -> None: ...


class _BodySource:
    """Wraps a streamed request body to remember an error raised by the *source*.

    A failing body iterator also cuts the upstream connection; without this we
    could not tell "the client sent too much / too slowly / went away" from "the
    endpoint reset the connection", and would eject a healthy endpoint for a
    client's fault.
    """

    __slots__ = ("error", "source")

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self.source = source
        self.error: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.source:
                yield chunk
        except BaseException as exc:
            self.error = exc
            raise


def translate(exc: TransportError | OSError, endpoint: Endpoint) -> tuple[str, str, GatewayError]:
    """(retry_on name, metric outcome, gateway error) for an attempt that failed before its headers."""
    where = f"endpoint {endpoint.url}"
    if isinstance(exc, transport.ServerDisconnected) and not exc.request_sent:
        return "reset-before-request", "reset", UpstreamError(f"{where}: {exc}")
    if isinstance(exc, transport.ConnectTimeout):
        return "connect-failure", "timeout", ConnectTimeout(f"{where}: connect timed out")
    if isinstance(exc, transport.ConnectError):
        return "connect-failure", "connect_error", UpstreamConnectError(f"{where}: {exc.os_error or exc}")
    if isinstance(exc, TimeoutError):  # ReadTimeout: no response headers within the per-try timeout
        return "timeout", "timeout", UpstreamTimeout(f"{where}: no response within the per-try timeout")
    return "reset", "reset", UpstreamError(f"{where}: {type(exc).__name__}: {exc}")


class RetryLoop:
    """The attempts of one request; ``UpstreamRequest`` adds admission, the deadline and release.

    One object per request, built by this constructor alone (the request *is* its retry loop:
    the hot path allocates and calls nothing for it). ``_send`` runs the loop inside the
    owner's overall ``_timeout``;
    ``_release_attempts`` gives back what the loop holds (the response, the endpoint's
    active count, the retry budget slot). If a streamed request body raises (e.g. the proxy's
    size or idle limit), that very exception propagates unchanged and the endpoint is not blamed.
    """

    __slots__ = (
        "_body", "_cluster", "_hash_key", "_headers", "_holding", "_method", "_path_qs", "_response",
        "_retry", "_retry_slot", "_timeout", "_timeouts", "attempts", "deadline", "endpoint", "priority",
    )

    def __init__(
        self,
        cluster: ClusterAttempts,
        method: str,
        path_qs: str,
        headers: Mapping[str, str] | CIMultiDict[str],
        body: bytes | AsyncIterable[bytes] | None,
        timeouts: TimeoutPolicy,
        retry: RetryPolicy,
        hash_key: str | None,
        priority: int = 0,
    ) -> None:
        self._cluster = cluster
        self._method = method.upper()
        self._path_qs = path_qs
        self._headers = headers
        self._body: bytes | _BodySource | None = (
            body if body is None or isinstance(body, bytes) else _BodySource(body)
        )
        self._timeouts = timeouts
        self._retry = retry
        self._hash_key = hash_key
        #: The route's priority (``resilience.shedding.PRIORITY_*``): the owner's admission order.
        self.priority = priority
        #: The overall deadline's timeout, entered by the owner before ``_send``.
        self._timeout: asyncio.Timeout | None = None
        self._response: UpstreamResponse | None = None
        self._holding: Endpoint | None = None  # endpoint whose ``active`` we incremented
        self._retry_slot = False
        #: Loop time at which the overall timeout expires (set by the owner on enter).
        self.deadline = 0.0
        #: The endpoint that produced the response (or the last one tried).
        self.endpoint: Endpoint | None = None
        #: Attempts made so far (1 + retries).
        self.attempts = 0

    async def _send(self) -> UpstreamResponse:
        cluster = self._cluster
        transports = cluster.transports
        if not transports:
            raise RuntimeError(f"cluster {cluster.name!r} is not started")
        # A stream cannot be replayed; a non-idempotent method is retried only when its
        # request was never sent (``_retry_delay``).
        replayable = self._body is None or isinstance(self._body, bytes)
        max_attempts = self._retry.attempts + 1 if replayable else 1
        connect_timeout = self._timeouts.connect
        read_timeout = self._timeouts.per_try
        hash_key = self._hash_key
        if hash_key is None and cluster.config.balancer == "consistent_hash":
            hash_key = self._default_hash_key()
        tried: list[Endpoint] = []
        while True:
            endpoint = cluster.pick(hash_key, tried)
            self.endpoint = endpoint
            self.attempts += 1
            endpoint.active += 1
            self._holding = endpoint
            started = cluster.now()
            try:
                resp = await transports[endpoint.url].send(
                    self._method, self._path_qs, self._headers, self._body,
                    connect_timeout=connect_timeout, read_timeout=read_timeout,
                )
            except asyncio.CancelledError:
                if self._timeout is not None and self._timeout.expired():
                    cluster.record_attempt(endpoint, "timeout", started, failed=True, gateway=True)
                raise
            except Exception as exc:
                self._release_endpoint()
                if isinstance(self._body, _BodySource) and self._body.error is not None:
                    # The client's body failed (too large, too slow, disconnected): not the
                    # endpoint's fault, so no outlier/metric record; re-raise the source's error.
                    raise self._body.error from None
                if not isinstance(exc, (TransportError, OSError)):
                    raise
                kind, outcome, error = translate(exc, endpoint)
                cluster.record_attempt(endpoint, outcome, started, failed=True, gateway=True)
                unsent = isinstance(exc, TransportError) and not exc.request_sent
                delay = self._retry_delay(kind, max_attempts, unsent=unsent)
                if delay is None:
                    raise error from exc
                tried.append(endpoint)
                if delay > 0.0:
                    await asyncio.sleep(delay)
                continue
            status = resp.status
            if status < 500:
                outcome = metrics.status_class(status)
                cluster.record_attempt(endpoint, outcome, started, failed=False, gateway=False)
                self._response = resp
                return resp
            gateway = status in _GATEWAY_STATUSES
            cluster.record_attempt(endpoint, "5xx", started, failed=True, gateway=gateway)
            delay = None
            if status == 502 and cluster.config.trust_not_forwarded and \
                    resp.headers.get(NOT_FORWARDED_HEADER) == NOT_FORWARDED_CONNECT_FAILURE:
                delay = self._retry_delay(UPSTREAM_CONNECT_FAILURE, max_attempts, unsent=True)
            if delay is None:
                delay = self._retry_delay("gateway-error" if gateway else "5xx", max_attempts)
            if delay is None:
                self._response = resp  # last attempt: the client sees the endpoint's 5xx
                return resp
            resp.release()  # before the backoff, so a deadline during it leaks nothing
            self._release_endpoint()
            tried.append(endpoint)
            if delay > 0.0:
                await asyncio.sleep(delay)

    def _retry_delay(self, kind: str, max_attempts: int, *, unsent: bool = False) -> float | None:
        """Backoff before a retry, or None if no retry. ``kind`` is an Envoy retry_on name.

        ``unsent``: the endpoint never saw the request (module docstring), so any method may be
        retried and the retry budget is not asked. Otherwise only an idempotent method is, and
        saying yes takes a retry budget slot (once per request). Every retry is counted.
        """
        policy = self._retry
        if self.attempts >= max_attempts:
            return None
        if not unsent and self._method not in IDEMPOTENT_METHODS:
            return None  # the endpoint may have acted on it: never twice
        retry_on = policy.retry_on
        if kind not in retry_on and _WIDER_KIND.get(kind) not in retry_on:
            return None
        cluster = self._cluster
        delay = backoff_delay(self.attempts, base=policy.backoff_base, cap=policy.backoff_max)
        if self.deadline - cluster.now() <= delay:
            return None  # no time left for another attempt
        if not unsent and not self._retry_slot:
            if not cluster.try_retry():
                return None
            self._retry_slot = True
        cluster.count_retry(kind, unsent=unsent)
        return delay

    def _default_hash_key(self) -> str:
        """consistent_hash without an explicit key: the configured header, else the path."""
        header = self._cluster.config.hash_header
        if header is not None:
            value = self._headers.get(header)
            if value is not None:
                return value
        return self._path_qs.partition("?")[0]

    def _release_endpoint(self) -> None:
        if self._holding is not None:
            self._holding.active -= 1
            self._holding = None

    def _release_attempts(self) -> None:
        """Release the response, the endpoint and the retry budget slot (idempotent)."""
        if self._response is not None:
            self._response.release()
            self._response = None
        if self._holding is not None:  # (``_release_endpoint`` inline: once per request)
            self._holding.active -= 1
            self._holding = None
        if self._retry_slot:
            self._cluster.release_retry()
            self._retry_slot = False
