"""A cluster: endpoints, a transport per endpoint, balancer, health, outlier, breaker, budget.

``Cluster.request`` is the only call the proxy handler makes; the per-request state
machine lives above this module and drives it through its public API, in this order:

- **admit** (``request.py``): ``try_admit`` without waiting, else ``acquire_limiter``
  (adaptive concurrency, may shed) then ``acquire_breaker``; ``release_breaker`` and
  ``release_limiter`` when the request is done;
- **attempt** (``retry.py``, the retry loop): ``pick`` an endpoint (balancer, health,
  ejections), ``transports[endpoint.url].send(...)``, ``record_attempt`` (metrics, latency EWMA,
  outlier detection); ``try_retry``/``release_retry`` for the retry budget (asked only for
  retries of requests the endpoint may have seen), ``count_retry`` for every retry.

This module owns the shared state those requests read and the bookkeeping they report;
it is the only one that knows the transport is ``gateway.upstreams.http1``.

No panic mode: when no endpoint is eligible (all unhealthy or ejected) requests
fail fast with ``NoHealthyEndpoint`` (503) instead of Envoy's "send to everyone
below 50% healthy". Outlier ejection can never empty a cluster (max_ejection_percent),
so this only happens when active health checks fail everywhere -- and then
sending traffic to endpoints we *know* fail their checks would only add load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Mapping
from typing import Any

from multidict import CIMultiDict

from gateway import metrics
from gateway.errors import LoadShed, NoHealthyEndpoint
from gateway.upstreams.balancers import Balancer, make_balancer
from gateway.upstreams.breaker import CircuitBreaker
from gateway.upstreams.config import ClusterConfig, RetryPolicy, TimeoutPolicy
from gateway.upstreams.endpoint import Endpoint
from gateway.upstreams.health import HealthChecker
from gateway.upstreams.http1 import Pool
from gateway.upstreams.outlier import OutlierDetector
from gateway.upstreams.request import UNLIMITED, UpstreamRequest
from gateway.upstreams.retry_budget import RetryBudget
from gateway.upstreams.transport import Transport
from resilience.adaptive import AdaptiveLimiter, GradientLimit
from resilience.shedding import PRIORITIES, priority_name

__all__ = ["Cluster", "make_limiter"]

#: Latency fed to the EWMA for a failed attempt: a fast "connection refused" or
#: 503 must not make an endpoint look attractive to the latency-aware balancer.
FAILURE_PENALTY_SECONDS = 1.0

class Cluster:
    """One named group of interchangeable endpoints, each reached through its own transport.

    The transport is a keep-alive connection pool (``gateway.upstreams.http1``) that adds
    nothing to the client's headers but ``Host`` and the body framing: no User-Agent,
    Accept or Accept-Encoding of our own.
    """

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.name = config.name
        self.endpoints: tuple[Endpoint, ...] = tuple(Endpoint(url) for url in config.endpoints)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Connection pool per endpoint URL (created on ``start``, in the serving loop).
        self._pools: dict[str, Pool] = {}
        #: The transport of each endpoint URL, empty until ``start`` (read-only: one attempt is
        #: ``transports[endpoint.url].send(...)``).
        self.transports: Mapping[str, Transport] = self._pools
        self._pool_metrics: dict[str, _PoolMetrics] = {}
        self._balancer: Balancer = make_balancer(config.balancer, self.endpoints)
        self._breaker = CircuitBreaker(self.name, config.breaker)
        #: Adaptive concurrency limit in front of the breaker (None: the breaker alone admits).
        self._limiter = make_limiter(config)
        self._shed_counters: dict[tuple[int, str], Any] = {}
        self._budget = RetryBudget(config.retry_budget)
        self._outlier = OutlierDetector(self.name, config.outlier, self.endpoints)
        self.health: HealthChecker | None = None
        if config.health_check is not None:
            self.health = HealthChecker(
                self.name, config.health_check, self.endpoints, on_change=self._refresh_eligible
            )
        self._eligible: tuple[Endpoint, ...] = self.endpoints
        self._publish = True
        # Pre-bound metric children keep registry lock traffic off the per-request path.
        # Every outcome and shed reason exists at 0 from start-up: rate()/increase() see the first one.
        self._attempt_counters: dict[str, dict[str, Any]] = {
            ep.url: {outcome: metrics.UPSTREAM_REQUESTS.labels(self.name, ep.url, outcome)
                     for outcome in metrics.UPSTREAM_OUTCOMES}
            for ep in self.endpoints
        }
        self._duration = metrics.UPSTREAM_REQUEST_DURATION.labels(self.name)
        self._active_gauge = metrics.UPSTREAM_ACTIVE_REQUESTS.labels(self.name)
        self._pending_gauge = metrics.UPSTREAM_PENDING_REQUESTS.labels(self.name)
        if self._limiter is not None:
            self._limit_gauge = metrics.ADAPTIVE_CONCURRENCY_LIMIT.labels(self.name)
            self._queue_gauge = metrics.ADAPTIVE_QUEUE_LENGTH.labels(self.name)
            for priority in PRIORITIES.values():
                for reason in metrics.LOAD_SHED_REASONS:
                    self._shed_counters[(priority, reason)] = metrics.LOAD_SHED.labels(
                        self.name, priority_name(priority), reason)
        metrics.register_gauge_source(self)
        self._retry_counters: dict[str, Any] = {}
        self._unsent_retry_counters: dict[str, Any] = {
            reason: metrics.UPSTREAM_RETRIES_UNSENT.labels(self.name, reason)
            for reason in metrics.UNSENT_RETRY_REASONS
        }
        self._budget_exhausted = metrics.UPSTREAM_RETRY_BUDGET_EXHAUSTED.labels(self.name)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the connection pools, publish endpoint gauges and start health checks."""
        if self._pools:  # started already (pools stay, closed, after aclose: requests get 502s)
            return
        self._loop = asyncio.get_running_loop()
        self._balancer = make_balancer(self.config.balancer, self.endpoints, clock=self._loop.time)
        cfg = self.config
        # The breaker bounds the cluster's total; each pool bounds one endpoint's connections.
        self._pools = pools = {
            ep.url: Pool(ep.url, limit=cfg.breaker.max_connections_per_endpoint,
                         keepalive_timeout=cfg.keepalive_timeout)
            for ep in self.endpoints
        }
        self.transports = pools
        self._pool_metrics = {url: _PoolMetrics(self.name, url) for url in pools}
        for ep in self.endpoints:
            metrics.UPSTREAM_ENDPOINT_HEALTHY.labels(self.name, ep.url).set(1 if ep.healthy else 0)
            metrics.UPSTREAM_ENDPOINT_EJECTED.labels(self.name, ep.url).set(1 if ep.ejected else 0)
        self._refresh_eligible()
        if self.health is not None:
            await self.health.start()

    async def drain(self, grace_seconds: float) -> bool:
        """Stop publishing and wait up to ``grace_seconds`` for in-flight requests; True if idle."""
        self.retire()
        try:
            async with asyncio.timeout(grace_seconds):
                await self._breaker.wait_idle()
        except TimeoutError:
            return False
        return True

    def retire(self) -> None:
        """Stop writing gauges (a replacement cluster with the same name now owns them)."""
        self._publish = self._outlier.publish = False
        if self.health is not None:
            self.health.publish = False

    async def aclose(self) -> None:
        """Stop health checks and close the pools (in-flight responses are cut)."""
        if self.health is not None:
            await self.health.aclose()
        for pool in self._pools.values():
            await pool.aclose()  # later requests fail to connect (502), never a KeyError

    # ------------------------------------------------------------ the proxy's API

    def request(
        self,
        method: str,
        path_qs: str,
        *,
        headers: Mapping[str, str] | CIMultiDict[str],
        body: bytes | AsyncIterable[bytes] | None,
        timeouts: TimeoutPolicy | None = None,
        retry: RetryPolicy | None = None,
        hash_key: str | None = None,
        priority: int = 0,
    ) -> UpstreamRequest:
        """Send ``method path_qs`` to an endpoint; ``async with`` yields the ``UpstreamResponse``.

        ``path_qs`` is appended to the endpoint's base URL as is (already encoded).
        ``timeouts``/``retry`` override the cluster's (per-route policy); ``priority``
        (``resilience.shedding.PRIORITY_*``, the route's) orders the adaptive
        limiter's wait queue. See ``UpstreamRequest`` for retry rules, raised errors
        and the overall deadline.
        """
        return UpstreamRequest(
            self,
            method,
            path_qs,
            headers,
            body,
            timeouts or self.config.timeouts,
            retry or self.config.retry,
            hash_key,
            priority,
        )

    @property
    def healthy_endpoints(self) -> int:
        """Endpoints currently eligible for traffic (healthy and not ejected)."""
        self.pick_candidates()
        return len(self._eligible)

    def publish_gauges(self) -> None:
        """Copy the breaker's and limiter's live counts into their gauges (scrape time, 1 Hz)."""
        if self._publish:
            self._active_gauge.set(self._breaker.in_flight)
            self._pending_gauge.set(self._breaker.pending)
            if self._limiter is not None:
                self._limit_gauge.set(self._limiter.limit)
                self._queue_gauge.set(self._limiter.queued)
            for url, pool in self._pools.items():
                self._pool_metrics[url].publish(pool)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for the admin ``/upstreams`` endpoint."""
        now = self.now()
        self.pick_candidates()
        return {
            "name": self.name,
            "balancer": self.config.balancer,
            "healthy_endpoints": len(self._eligible),
            "in_flight": self._breaker.in_flight,
            "pending": self._breaker.pending,
            "active_retries": self._budget.active_retries,
            "active_health_checks": self.health is not None,
            "adaptive_concurrency": None if self._limiter is None else {
                "limit": self._limiter.limit,
                "in_flight": self._limiter.in_flight,
                "queued": self._limiter.queued,
                "baseline_rtt_ms": round(self._limiter.algorithm.long_rtt * 1000.0, 3),
            },
            "endpoints": [
                {
                    "url": ep.url,
                    "healthy": ep.healthy,
                    "ejected": ep.ejected,
                    "ejected_for_seconds": round(max(0.0, ep.ejected_until - now), 3) if ep.ejected else 0.0,
                    "times_ejected": ep.times_ejected,
                    "consecutive_failures": ep.consecutive_failures,
                    "active_requests": ep.active,
                    "ewma_latency_ms": round(ep.ewma_cost * 1000.0, 3),
                }
                for ep in self.endpoints
            ],
        }

    def now(self) -> float:
        """The loop's monotonic clock (what deadlines and ejections are measured in)."""
        return self._loop.time() if self._loop is not None else time.monotonic()

    # ------------------------------------------------------------ admission: limiter, then breaker

    @property
    def adaptive(self) -> bool:
        """True when an adaptive concurrency limiter admits requests before the breaker."""
        return self._limiter is not None

    def try_admit(self) -> float | None:
        """Admit a request at once if both gates have room (the hot path: no await).

        Takes an adaptive limiter slot (when ``adaptive``) and a breaker slot, and returns
        the limiter's admission time (``UNLIMITED`` without a limiter). None when a gate is
        full: nothing was taken, and the caller waits at the gates in order,
        ``acquire_limiter`` (when ``adaptive``) then ``acquire_breaker``. Whatever was taken
        goes back with ``release_breaker`` and ``release_limiter``.
        """
        breaker = self._breaker
        limiter = self._limiter
        if limiter is None:
            return UNLIMITED if breaker.try_acquire() else None
        started = limiter.try_acquire()
        if started is None or breaker.try_acquire():
            return started
        # The breaker is full: the limiter slot goes back unused. Nobody waits for it (it was
        # free, and nothing ran since), so the caller's acquire_limiter takes it again at once
        # and then waits at the breaker, exactly as if it had held the slot meanwhile.
        limiter.release(started, dropped=False, sample=False)
        return None

    async def acquire_limiter(self, priority: int) -> float:
        """Wait for an adaptive limiter slot: the admission time (``UNLIMITED`` without a limiter).

        ``priority`` (``resilience.shedding.PRIORITY_*``) orders the wait queue; the wait is
        bounded by the limiter's ``max_wait`` and the caller's deadline. Raises ``LoadShed``
        (counted in ``gateway_load_shed_total``) when the request is shed.
        """
        limiter = self._limiter
        if limiter is None:
            return UNLIMITED
        started = limiter.try_acquire()
        if started is not None:
            return started
        try:
            return await limiter.acquire(priority)
        except LoadShed as shed:
            self.count_shed(priority, shed.reason)
            raise

    async def acquire_breaker(self) -> None:
        """Take a breaker slot, queueing (FIFO, bounded by the caller's deadline) when all are taken.

        Raises ``CircuitOpen`` at once when the breaker's queue is full as well.
        """
        breaker = self._breaker
        if not breaker.try_acquire():
            await breaker.wait()

    def release_breaker(self) -> None:
        """Give back a breaker slot (of ``try_admit`` or ``acquire_breaker``)."""
        self._breaker.release()

    def release_limiter(self, started: float, *, rtt: float | None, overloaded: bool, failed: bool) -> None:
        """Give back the limiter slot admitted at ``started``, with the sample the outcome makes.

        With response headers, ``rtt`` (admission to headers) is the sample, dropped when
        ``overloaded`` (429/502/503/504, or the deadline expired). Without, a request that
        ``failed`` on the cluster's side (timeouts, refused or reset connections) is a dropped
        sample, and any other (the client went away, or its body failed) leaves none.
        """
        limiter = self._limiter
        if limiter is None:
            return
        if rtt is not None:
            limiter.release(started, dropped=overloaded, rtt=rtt)
        elif failed:
            limiter.release(started, dropped=True)
        else:
            limiter.release(started, dropped=False, sample=False)

    # ------------------------------------------------------------ attempts

    def pick_candidates(self) -> tuple[Endpoint, ...]:
        """Eligible endpoints, returning lazily any whose ejection has expired."""
        outlier = self._outlier
        if outlier.ejected_count and self.now() >= outlier.next_expiry and outlier.uneject_due(self.now()):
            self._refresh_eligible()
        return self._eligible

    def pick(self, hash_key: str | None, tried: list[Endpoint]) -> Endpoint:
        """Choose the endpoint for the next attempt, avoiding ``tried`` when possible."""
        endpoint = self._balancer.pick(self.pick_candidates(), hash_key=hash_key, exclude=tried)
        if endpoint is None:
            unhealthy = sum(not ep.healthy for ep in self.endpoints)
            raise NoHealthyEndpoint(
                f"cluster {self.name!r}: no eligible endpoint of {len(self.endpoints)} "
                f"({unhealthy} unhealthy, {self._outlier.ejected_count} ejected)"
            )
        return endpoint

    def record_attempt(
        self, endpoint: Endpoint, outcome: str, started: float, *, failed: bool, gateway: bool
    ) -> None:
        """Report one attempt: metrics, EWMA and outlier detection (``outcome`` is the label)."""
        now = self.now()
        latency = now - started
        if self._publish:
            self._duration.observe(latency)
            counters = self._attempt_counters[endpoint.url]
            counter = counters.get(outcome)
            if counter is None:
                counter = metrics.UPSTREAM_REQUESTS.labels(self.name, endpoint.url, outcome)
                counters[outcome] = counter
            counter.inc()
        if failed:
            endpoint.observe_latency(max(latency, FAILURE_PENALTY_SECONDS), now)
            if self._outlier.record_failure(endpoint, gateway=gateway, now=now):
                self._refresh_eligible()
        else:
            endpoint.observe_latency(latency, now)
            if endpoint.consecutive_failures:
                self._outlier.record_success(endpoint)

    def try_retry(self) -> bool:
        """Take a retry budget slot (a request holds one from its first retry on); False if spent.

        An exhausted budget is counted (``gateway_upstream_retry_budget_exhausted_total``).
        """
        if self._budget.try_acquire(self._breaker.in_flight):
            return True
        self._budget_exhausted.inc()
        return False

    def release_retry(self) -> None:
        """Give back a retry budget slot taken by ``try_retry``."""
        self._budget.release()

    # ------------------------------------------------------------ counters

    def count_shed(self, priority: int, reason: str) -> None:
        """Count one request shed by the adaptive limiter (``reason`` from ``LoadShed.reason``)."""
        key = (priority, reason)
        counter = self._shed_counters.get(key)
        if counter is None:
            counter = metrics.LOAD_SHED.labels(self.name, priority_name(priority), reason)
            self._shed_counters[key] = counter
        counter.inc()

    def count_retry(self, reason: str, *, unsent: bool = False) -> None:
        """Count one retry by the reason of the attempt that failed (``unsent``: also apart, as
        a retry the endpoint never saw and the budget was not asked for)."""
        counter = self._retry_counters.get(reason)
        if counter is None:
            counter = self._retry_counters[reason] = metrics.UPSTREAM_RETRIES.labels(self.name, reason)
        counter.inc()
        if unsent:
            counter = self._unsent_retry_counters.get(reason)
            if counter is None:
                counter = self._unsent_retry_counters[reason] = metrics.UPSTREAM_RETRIES_UNSENT.labels(
                    self.name, reason)
            counter.inc()

    def _refresh_eligible(self) -> None:
        self._eligible = tuple(ep for ep in self.endpoints if ep.eligible)
        if self._publish:
            metrics.UPSTREAM_HEALTHY_ENDPOINTS.labels(self.name).set(len(self._eligible))

    def __repr__(self) -> str:
        return f"Cluster({self.name!r}, endpoints={len(self.endpoints)}, eligible={len(self._eligible)})"


class _PoolMetrics:
    """An endpoint pool's counts copied into metrics at publish time (none on the request path)."""

    __slots__ = ("_connects", "_idle", "_in_use", "_opened", "_replays", "_stale")

    def __init__(self, cluster: str, endpoint: str) -> None:
        self._idle = metrics.UPSTREAM_CONNECTIONS.labels(cluster, endpoint, "idle")
        self._in_use = metrics.UPSTREAM_CONNECTIONS.labels(cluster, endpoint, "in_use")
        self._opened = metrics.UPSTREAM_CONNECTIONS_OPENED.labels(cluster, endpoint)
        self._stale = metrics.UPSTREAM_STALE_CONNECTION_REPLAYS.labels(cluster, endpoint)
        self._connects = self._replays = 0

    def publish(self, pool: Pool) -> None:
        idle = pool.idle_connections
        self._idle.set(idle)
        self._in_use.set(pool.open_connections - idle)
        if pool.connects > self._connects:
            self._opened.inc(pool.connects - self._connects)
            self._connects = pool.connects
        if pool.stale_replays > self._replays:
            self._stale.inc(pool.stale_replays - self._replays)
            self._replays = pool.stale_replays


def make_limiter(config: ClusterConfig) -> AdaptiveLimiter | None:
    """The adaptive concurrency limiter the cluster's ``adaptive_concurrency`` section asks for (or None)."""
    adaptive = config.adaptive_concurrency
    if adaptive is None:
        return None
    algorithm = GradientLimit(
        initial_limit=adaptive.initial_limit,
        min_limit=adaptive.min_limit,
        max_limit=adaptive.max_limit,
        smoothing=adaptive.smoothing,
        tolerance=adaptive.tolerance,
    )
    return AdaptiveLimiter(
        algorithm,
        max_queue=adaptive.max_queue,
        max_wait=adaptive.max_wait,
        max_wait_by_priority={PRIORITIES[name]: seconds for name, seconds in adaptive.max_wait_by_priority},
        name=f"cluster {config.name!r}",
        sample_window=adaptive.sample_window,
        min_samples=adaptive.min_samples,
        shed_error=LoadShed,  # a GatewayError: 503 load-shed, stale-if-error on cached routes
    )
