"""One proxied request: admission, the overall deadline, the retry loop, release.

Usage (the proxy handler)::

    async with cluster.request("GET", "/orders?page=2", headers=h, body=b"") as resp:
        async for chunk in resp.iter_any():
            await downstream.write(chunk)

Deadline: ``__aenter__`` enters ``asyncio.timeout_at(deadline)`` and ``__aexit__``
leaves it, so the overall timeout covers admission, every attempt, backoff *and*
the caller's streaming of the body inside the ``async with`` block; expiry raises
``UpstreamTimeout`` from the ``async with``. ``deadline`` (loop time) is exposed
for callers that want to bound other work by it. Enter and exit in the same task.

The request drives its cluster only through ``Cluster``'s public admission and attempt
API (``ClusterAdmission``): ``try_admit`` (or ``acquire_limiter`` then ``acquire_breaker``)
→ the retry loop (``gateway.upstreams.retry``) → ``release_breaker``/``release_limiter``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Protocol

from gateway import metrics
from gateway.errors import CircuitOpen, GatewayError, LoadShed, UpstreamError, UpstreamTimeout
from gateway.upstreams.retry import ClusterAttempts, RetryLoop
from gateway.upstreams.transport import ReadTimeout, TransportError, UpstreamResponse

__all__ = ["UNLIMITED", "ClusterAdmission", "UpstreamRequest"]

#: ``try_admit``'s and ``acquire_limiter``'s answer for a cluster without an adaptive limiter.
UNLIMITED = -1.0
#: Final statuses that tell the adaptive limiter the cluster is overloaded ("dropped").
_OVERLOAD_STATUSES = frozenset({429, 502, 503, 504})


class ClusterAdmission(ClusterAttempts, Protocol):
    """What a request asks of its cluster: admission, plus the retry loop's attempt API."""

    @property
    def adaptive(self) -> bool: ...

    def try_admit(self) -> float | None: ...

    async def acquire_limiter(self, priority: int) -> float: ...

    async def acquire_breaker(self) -> None: ...

    def release_breaker(self) -> None: ...

    def release_limiter(
        self, started: float, *, rtt: float | None, overloaded: bool, failed: bool
    ) -> None: ...

    def count_shed(self, priority: int, reason: str) -> None: ...


class UpstreamRequest(RetryLoop):
    """Async context manager returned by ``Cluster.request``; yields the ``UpstreamResponse``.

    Retry rules: ``gateway.upstreams.retry``. Raises ``CircuitOpen``, ``LoadShed``,
    ``NoHealthyEndpoint``, ``UpstreamConnectError``, ``ConnectTimeout``, ``UpstreamTimeout``
    or ``UpstreamError``; transport (``gateway.upstreams.transport``), asyncio and OS
    errors never escape ``__aenter__``.
    With ``adaptive_concurrency`` configured, admission first passes the cluster's
    adaptive limiter (``LoadShed``, 503, when shed) and then the breaker (the hard cap).
    On exit, body-read failures (``PayloadError``, ``ReadTimeout``) become
    ``UpstreamError``/``UpstreamTimeout``; aiohttp's ``ClientConnectionResetError``
    is left alone: it means the *downstream* client went away while the handler
    was writing.
    """

    # Built by ``RetryLoop``'s constructor (``cluster`` must be a ``ClusterAdmission``); the
    # admission state below is set first thing on enter: one constructor call per request.
    __slots__ = ("_admitted", "_dropped", "_limited", "_rtt")

    _cluster: ClusterAdmission

    async def __aenter__(self) -> UpstreamResponse:
        cluster = self._cluster
        self._admitted = False  # holds a breaker slot
        self._limited = UNLIMITED  # adaptive limiter admission time; < 0 while no limiter slot is held
        self._rtt: float | None = None  # limiter admission to response headers
        self._dropped = False  # the outcome signals overload to the adaptive limiter
        self.deadline = cluster.now() + self._timeouts.overall
        self._timeout = timeout = asyncio.timeout_at(self.deadline)
        await timeout.__aenter__()
        try:
            limited = cluster.try_admit()  # the hot path: both slots free, no await
            if limited is None:  # wait at the limiter (may shed), then at the breaker
                limited = UNLIMITED
                if cluster.adaptive:
                    limited = self._limited = await cluster.acquire_limiter(self.priority)
                await cluster.acquire_breaker()
            self._limited = limited
            self._admitted = True
            resp = await self._send()
            if limited >= 0.0:
                self._rtt = cluster.now() - limited
                self._dropped = resp.status in _OVERLOAD_STATUSES
            return resp
        except BaseException as exc:
            at_limiter = self._limited < 0.0 and cluster.adaptive
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
        # the cluster's edge for the body: transport errors become the gateway's own
        if isinstance(exc, ReadTimeout):
            raise UpstreamTimeout(f"endpoint {self._endpoint_url()}: body read timed out") from exc
        if isinstance(exc, TransportError):
            raise UpstreamError(f"endpoint {self._endpoint_url()}: response body failed: {exc}") from exc

    # ------------------------------------------------------------ release

    def _finish(self, exc: BaseException | None = None) -> None:
        """Release the response, the endpoint, the retry slot, the breaker and limiter slots (idempotent)."""
        self._release_attempts()
        if self._admitted:
            self._cluster.release_breaker()
            self._admitted = False
        started = self._limited
        if started >= 0.0:  # the limiter's sample: the RTT to the headers, or what failed before
            self._limited = UNLIMITED
            expired = self._timeout is not None and self._timeout.expired()
            failed = self._rtt is None and self.attempts > 0 and (expired or isinstance(exc, UpstreamError))
            self._cluster.release_limiter(started, rtt=self._rtt, overloaded=self._dropped or expired,
                                          failed=failed)

    def _overall_timeout_error(self, *, at_limiter: bool = False) -> GatewayError:
        name = self._cluster.name
        if at_limiter:
            # still queued at the adaptive limiter when the deadline hit: shed, as after max_wait
            self._cluster.count_shed(self.priority, "wait_timeout")
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
