"""One proxied request: admission, endpoint choice, attempts, retries, release.

Usage (the proxy handler)::

    async with cluster.request("GET", "/orders?page=2", headers=h, body=b"") as resp:
        async for chunk in resp.iter_any():
            await downstream.write(chunk)

Deadline: ``__aenter__`` enters ``asyncio.timeout_at(deadline)`` and ``__aexit__``
leaves it, so the overall timeout covers admission, every attempt, backoff *and*
the caller's streaming of the body inside the ``async with`` block; expiry raises
``UpstreamTimeout`` from the ``async with``. ``deadline`` (loop time) is exposed
for callers that want to bound other work by it. Enter and exit in the same task.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from multidict import CIMultiDict

from gateway import metrics
from gateway.errors import (
    CircuitOpen,
    ConnectTimeout,
    GatewayError,
    LoadShed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.upstreams import transport
from gateway.upstreams.config import RetryPolicy, TimeoutPolicy
from gateway.upstreams.endpoint import Endpoint
from gateway.upstreams.transport import ReadTimeout, TransportError, UpstreamResponse

if TYPE_CHECKING:
    from gateway.upstreams.cluster import Cluster

__all__ = ["IDEMPOTENT_METHODS", "UpstreamRequest"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_GATEWAY_STATUSES = frozenset({502, 503, 504})
#: Final statuses that tell the adaptive limiter the cluster is overloaded ("dropped").
_OVERLOAD_STATUSES = frozenset({429, 502, 503, 504})


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


def _classify(exc: BaseException, endpoint: Endpoint) -> tuple[str, str, GatewayError]:
    """(retry_on name, metric outcome, gateway error) for a failed attempt."""
    where = f"endpoint {endpoint.url}"
    if isinstance(exc, transport.ConnectTimeout):
        return "connect-failure", "timeout", ConnectTimeout(f"{where}: connect timed out")
    if isinstance(exc, transport.ConnectError):
        return "connect-failure", "connect_error", UpstreamConnectError(f"{where}: {exc.os_error or exc}")
    if isinstance(exc, TimeoutError):  # ReadTimeout: no response headers within the per-try timeout
        return "timeout", "timeout", UpstreamTimeout(f"{where}: no response within the per-try timeout")
    return "reset", "reset", UpstreamError(f"{where}: {type(exc).__name__}: {exc}")


class UpstreamRequest:
    """Async context manager returned by ``Cluster.request``; yields the ``UpstreamResponse``.

    Retries happen only for idempotent methods with a ``bytes`` (or no) body, when
    the failure kind is in ``retry.retry_on``, attempts and time remain and the
    retry budget allows; each retry prefers an endpoint not tried yet and waits a
    fully jittered exponential backoff. A retryable status on the last attempt is
    returned as is. Raises ``CircuitOpen``, ``NoHealthyEndpoint``,
    ``UpstreamConnectError``, ``ConnectTimeout``, ``UpstreamTimeout`` or
    ``UpstreamError``; transport (``gateway.upstreams.transport``), asyncio and OS errors never
    escape ``__aenter__``.
    With ``adaptive_concurrency`` configured, admission first passes the cluster's
    adaptive limiter (``LoadShed``, 503, when shed) and then the breaker (the hard cap).
    On exit, body-read failures (``PayloadError``, ``ReadTimeout``) become
    ``UpstreamError``/``UpstreamTimeout``; aiohttp's ``ClientConnectionResetError``
    is left alone: it means the *downstream* client went away while the handler
    was writing. If a
    streamed request ``body`` raises (e.g. the proxy's size or idle limit), that
    very exception propagates unchanged and the endpoint is not blamed.
    """

    __slots__ = (
        "_admitted", "_body", "_cluster", "_dropped", "_hash_key", "_headers", "_holding",
        "_limited", "_method", "_path_qs", "_priority", "_response", "_retry", "_retry_slot", "_rtt",
        "_timeout", "_timeouts", "attempts", "deadline", "endpoint",
    )

    def __init__(
        self,
        cluster: Cluster,
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
        self._timeout: asyncio.Timeout | None = None
        self._response: UpstreamResponse | None = None
        self._holding: Endpoint | None = None  # endpoint whose ``active`` we incremented
        self._admitted = False
        self._retry_slot = False
        self._priority = priority
        self._limited = -1.0  # adaptive limiter admission time; < 0 while no limiter slot is held
        self._rtt: float | None = None  # limiter admission to response headers
        self._dropped = False  # the outcome signals overload to the adaptive limiter
        #: Loop time at which the overall timeout expires (set on enter).
        self.deadline = 0.0
        #: The endpoint that produced the response (or the last one tried).
        self.endpoint: Endpoint | None = None
        #: Attempts made so far (1 + retries).
        self.attempts = 0

    async def __aenter__(self) -> UpstreamResponse:
        cluster = self._cluster
        self.deadline = cluster.now() + self._timeouts.overall
        self._timeout = timeout = asyncio.timeout_at(self.deadline)
        await timeout.__aenter__()
        try:
            limiter = cluster._limiter
            if limiter is not None:
                started = limiter.try_acquire()  # the hot path: no await while a slot is free
                if started is None:
                    try:
                        started = await limiter.acquire(self._priority)
                    except LoadShed as shed:
                        cluster.count_shed(self._priority, shed.reason)
                        raise
                self._limited = started
            breaker = cluster._breaker
            if not breaker.try_acquire():
                await breaker.wait()
            self._admitted = True
            return await self._send()
        except BaseException as exc:
            at_limiter = self._limited < 0.0 and cluster._limiter is not None
            self._finish(exc)
            try:
                await timeout.__aexit__(type(exc), exc, exc.__traceback__)
            except TimeoutError:
                raise self._overall_timeout_error(at_limiter=at_limiter) from exc
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish(exc)
        assert self._timeout is not None
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            raise UpstreamTimeout(
                f"cluster {self._cluster.name!r}: overall timeout {self._timeouts.overall}s "
                "exceeded while streaming the response"
            ) from exc
        if isinstance(exc, ReadTimeout):
            raise UpstreamTimeout(f"endpoint {self._endpoint_url()}: body read timed out") from exc
        if isinstance(exc, TransportError):
            raise UpstreamError(f"endpoint {self._endpoint_url()}: response body failed: {exc}") from exc

    # ------------------------------------------------------------ attempts

    async def _send(self) -> UpstreamResponse:
        cluster = self._cluster
        pools = cluster.pools
        if not pools:
            raise RuntimeError(f"cluster {cluster.name!r} is not started")
        # A stream cannot be replayed, and a non-idempotent method must not run twice.
        replayable = self._body is None or isinstance(self._body, bytes)
        retryable = replayable and self._method in IDEMPOTENT_METHODS
        max_attempts = self._retry.attempts + 1 if retryable else 1
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
                resp = await pools[endpoint.url].send(
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
                kind, outcome, error = _classify(exc, endpoint)
                cluster.record_attempt(endpoint, outcome, started, failed=True, gateway=True)
                delay = self._retry_delay(kind, max_attempts)
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
                self._headers_received(status)
                return resp
            gateway = status in _GATEWAY_STATUSES
            cluster.record_attempt(endpoint, "5xx", started, failed=True, gateway=gateway)
            delay = self._retry_delay("gateway-error" if gateway else "5xx", max_attempts)
            if delay is None:
                self._response = resp  # last attempt: the client sees the endpoint's 5xx
                self._headers_received(status)
                return resp
            resp.release()  # before the backoff, so a deadline during it leaks nothing
            self._release_endpoint()
            tried.append(endpoint)
            if delay > 0.0:
                await asyncio.sleep(delay)

    def _retry_delay(self, kind: str, max_attempts: int) -> float | None:
        """Backoff before a retry, or None if no retry. ``kind`` is an Envoy retry_on name.

        Saying yes takes a retry budget slot (once per request) and counts the retry.
        """
        policy = self._retry
        if self.attempts >= max_attempts:
            return None
        retry_on = policy.retry_on
        if kind not in retry_on and not (kind == "gateway-error" and "5xx" in retry_on):
            return None
        cluster = self._cluster
        ceiling = min(policy.backoff_max, policy.backoff_base * (1 << min(self.attempts - 1, 16)))
        delay = random.uniform(0.0, ceiling)
        if self.deadline - cluster.now() <= delay:
            return None  # no time left for another attempt
        if not self._retry_slot:
            if not cluster._budget.try_acquire(cluster._breaker.in_flight):
                cluster._budget_exhausted.inc()
                return None
            self._retry_slot = True
        cluster.count_retry(kind)
        return delay

    # ------------------------------------------------------------ bookkeeping

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

    def _headers_received(self, status: int) -> None:
        if self._limited >= 0.0:
            self._rtt = self._cluster.now() - self._limited
            self._dropped = status in _OVERLOAD_STATUSES

    def _release_limiter(self, exc: BaseException | None) -> None:
        """Give the limiter slot back with one sample: the RTT to the response headers.

        Failures before the headers count as dropped when the cluster is to blame
        (timeouts, refused/reset connections); a client that went away, or whose
        body failed, leaves no sample.
        """
        started = self._limited
        limiter = self._cluster._limiter
        if started < 0.0 or limiter is None:
            return
        self._limited = -1.0
        expired = self._timeout is not None and self._timeout.expired()
        if self._rtt is not None:
            limiter.release(started, dropped=self._dropped or expired, rtt=self._rtt)
        elif self.attempts and (expired or isinstance(exc, UpstreamError)):
            limiter.release(started, dropped=True)
        else:
            limiter.release(started, dropped=False, sample=False)

    def _finish(self, exc: BaseException | None = None) -> None:
        """Release the response, the endpoint, the retry slot, the breaker and limiter slots (idempotent)."""
        if self._response is not None:
            self._response.release()
            self._response = None
        self._release_endpoint()
        cluster = self._cluster
        if self._retry_slot:
            cluster._budget.release()
            self._retry_slot = False
        if self._admitted:
            cluster._breaker.release()
            self._admitted = False
        self._release_limiter(exc)

    def _overall_timeout_error(self, *, at_limiter: bool = False) -> GatewayError:
        name = self._cluster.name
        if at_limiter:
            # still queued at the adaptive limiter when the deadline hit: shed, as after max_wait
            self._cluster.count_shed(self._priority, "wait_timeout")
            return LoadShed(f"cluster {name!r}: no limiter slot before the overall deadline",
                            reason="wait_timeout")
        if self.attempts == 0:  # still queued at the breaker: that is overload, not a slow endpoint
            metrics.CIRCUIT_BREAKER_REJECTIONS.labels(name, "pending_timeout").inc()
            return CircuitOpen(
                f"cluster {name!r}: no breaker slot before the overall deadline", retry_after=1.0
            )
        return UpstreamTimeout(f"cluster {name!r}: overall timeout {self._timeouts.overall}s exceeded")

    def _endpoint_url(self) -> str:
        return self.endpoint.url if self.endpoint is not None else "?"
