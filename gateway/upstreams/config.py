"""Typed, frozen cluster configuration, validated on construction.

Every dataclass checks its own fields in ``__post_init__`` with the ``configkit`` checks (a
``ConfigError`` naming the field); the ``parse_*`` functions turn YAML-shaped mappings into these
objects, reject unknown keys and prefix the full path, e.g.
``clusters.mes.health_check.interval: must be > 0, got 0``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

from yarl import URL

from configkit import (
    ConfigError,
    Section,
    check,
    choice,
    field_names,
    flag,
    integer,
    mapping,
    number,
    shown,
    string_list,
    text,
    within,
)
from telemetry.redaction import redact_text

__all__ = [
    "RETRY_ON_VALUES",
    "AdaptiveConcurrencyConfig",
    "BalancerKind",
    "BreakerConfig",
    "ClusterConfig",
    "HealthCheckConfig",
    "OutlierConfig",
    "RetryBudgetConfig",
    "RetryPolicy",
    "TimeoutPolicy",
    "merge_retry",
    "merge_timeouts",
    "parse_cluster",
    "parse_retry",
    "parse_timeouts",
]

BalancerKind = Literal["round_robin", "least_request", "ewma", "consistent_hash"]
#: Envoy ``retry_on`` names we implement.
RETRY_ON_VALUES = frozenset(
    {"connect-failure", "reset-before-request", "reset", "5xx", "gateway-error", "timeout"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _instance(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise ConfigError(name, f"expected {kind.__name__} settings, got {shown(value)}")


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeoutPolicy:
    """Seconds allowed to connect, per attempt (up to response headers), and overall."""

    connect: float = 1.0
    per_try: float = 5.0
    overall: float = 15.0

    def __post_init__(self) -> None:
        for name in ("connect", "per_try", "overall"):
            number(getattr(self, name), name, above=0)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retries after the first try, on which failures (Envoy names), with jittered backoff."""

    attempts: int = 2
    retry_on: frozenset[str] = frozenset(RETRY_ON_VALUES)
    backoff_base: float = 0.025
    backoff_max: float = 0.25

    def __post_init__(self) -> None:
        integer(self.attempts, "attempts", minimum=0)
        check(isinstance(self.retry_on, frozenset), "retry_on", "expected a set of strings")
        if unknown := sorted(str(v) for v in self.retry_on - RETRY_ON_VALUES):
            raise ConfigError("retry_on", f"unknown value {unknown[0]!r} (allowed: "
                                          f"{', '.join(sorted(RETRY_ON_VALUES))})")
        number(self.backoff_base, "backoff_base", minimum=0)
        number(self.backoff_max, "backoff_max", minimum=0)
        check(self.backoff_max >= self.backoff_base, "backoff_max",
              f"must be >= backoff_base ({self.backoff_base}), got {self.backoff_max}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryBudgetConfig:
    """Active retries may not exceed max(min_retry_concurrency, budget_percent% of active).

    Per gateway worker process. The floor is 10, not Envoy's 3: an endpoint that dies under load
    resets every request already written to it -- up to ``outlier.consecutive_failures`` (5) per
    process before it is ejected, all inside one retry backoff -- and those possibly-seen retries
    ask the budget; a floor below that burst turns an endpoint's death into client errors
    (docs/configuration.md, "Retries, the retry budget and backoff").
    """

    budget_percent: float = 20.0
    min_retry_concurrency: int = 10

    def __post_init__(self) -> None:
        number(self.budget_percent, "budget_percent", minimum=0, maximum=100)
        integer(self.min_retry_concurrency, "min_retry_concurrency", minimum=0)


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthCheckConfig:
    """Active HTTP health check; ``expected_statuses`` is an inclusive (low, high) range."""

    path: str = "/healthz"
    interval: float = 5.0
    timeout: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    expected_statuses: tuple[int, int] = (200, 399)
    jitter: float = 0.1

    def __post_init__(self) -> None:
        check(text(self.path, "path").startswith("/"), "path", f"must start with '/', got {self.path!r}")
        number(self.interval, "interval", above=0)
        number(self.timeout, "timeout", above=0)
        integer(self.healthy_threshold, "healthy_threshold", minimum=1)
        integer(self.unhealthy_threshold, "unhealthy_threshold", minimum=1)
        low_high = self.expected_statuses
        check(isinstance(low_high, tuple) and len(low_high) == 2, "expected_statuses",
              f"expected [low, high], got {shown(low_high)}")
        for i, status in enumerate(low_high):
            integer(status, f"expected_statuses[{i}]", minimum=100, maximum=599)
        check(low_high[0] <= low_high[1], "expected_statuses",
              f"must be [low, high] with low <= high, got {list(low_high)}")
        number(self.jitter, "jitter", minimum=0, below=1)  # a fraction of interval


@dataclass(frozen=True, kw_only=True, slots=True)
class OutlierConfig:
    """Passive ejection; ``consecutive_gateway_failures=None`` disables that detector."""

    consecutive_failures: int = 5
    consecutive_gateway_failures: int | None = None
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0

    def __post_init__(self) -> None:
        integer(self.consecutive_failures, "consecutive_failures", minimum=1)
        if self.consecutive_gateway_failures is not None:
            integer(self.consecutive_gateway_failures, "consecutive_gateway_failures", minimum=1)
        number(self.base_ejection_time, "base_ejection_time", above=0)
        number(self.max_ejection_time, "max_ejection_time", above=0)
        check(self.max_ejection_time >= self.base_ejection_time, "max_ejection_time",
              f"must be >= base_ejection_time ({self.base_ejection_time}), got {self.max_ejection_time}")
        number(self.max_ejection_percent, "max_ejection_percent", minimum=0, maximum=100)


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerConfig:
    """Per-cluster in-flight limit, bounded wait queue, and per-endpoint connection pool."""

    max_requests: int = 1024
    max_pending: int = 128
    max_connections_per_endpoint: int = 256

    def __post_init__(self) -> None:
        integer(self.max_requests, "max_requests", minimum=1)
        integer(self.max_pending, "max_pending", minimum=0)
        integer(self.max_connections_per_endpoint, "max_connections_per_endpoint", minimum=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class AdaptiveConcurrencyConfig:
    """Adaptive concurrency limit with a bounded priority wait queue (docs/load-shedding.md).

    ``initial_limit``/``min_limit``/``max_limit``/``smoothing``/``tolerance`` parametrise the
    gradient algorithm; ``max_queue`` waiters wait at most ``max_wait`` seconds, or their
    priority's entry of ``max_wait_by_priority`` (``{high: 2.0}``: operators wait longer before
    a 503); one sample per ``sample_window`` seconds with at least ``min_samples`` calls feeds
    the algorithm.
    """

    algorithm: Literal["gradient"] = "gradient"
    initial_limit: int = 20
    min_limit: int = 2
    max_limit: int = 200
    smoothing: float = 0.2
    tolerance: float = 1.5
    max_queue: int = 50
    max_wait: float = 0.2
    #: (priority name, seconds) pairs overriding ``max_wait``; YAML: a mapping like ``{high: 2.0}``.
    max_wait_by_priority: tuple[tuple[str, float], ...] = ()
    sample_window: float = 1.0
    min_samples: int = 10

    def __post_init__(self) -> None:
        choice(self.algorithm, "algorithm", ("gradient",))
        integer(self.min_limit, "min_limit", minimum=1)
        integer(self.initial_limit, "initial_limit", minimum=1)
        integer(self.max_limit, "max_limit", minimum=1)
        check(self.initial_limit >= self.min_limit, "initial_limit",
              f"must be >= min_limit ({self.min_limit}), got {self.initial_limit}")
        check(self.max_limit >= self.initial_limit, "max_limit",
              f"must be >= initial_limit ({self.initial_limit}), got {self.max_limit}")
        number(self.smoothing, "smoothing", above=0, maximum=1)
        number(self.tolerance, "tolerance", minimum=1)
        integer(self.max_queue, "max_queue", minimum=0)
        number(self.max_wait, "max_wait", above=0)
        for priority, seconds in self.max_wait_by_priority:
            check(priority in ("high", "normal", "low"), "max_wait_by_priority",
                  f"unknown priority {priority!r} (allowed: high, normal, low)")
            number(seconds, f"max_wait_by_priority.{priority}", above=0)
        number(self.sample_window, "sample_window", above=0)
        integer(self.min_samples, "min_samples", minimum=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterConfig:
    """One named cluster: its endpoints (base URLs) and every policy applied to them."""

    name: str
    endpoints: tuple[str, ...]
    balancer: BalancerKind = "least_request"
    hash_header: str | None = None
    timeouts: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_budget: RetryBudgetConfig = field(default_factory=RetryBudgetConfig)
    health_check: HealthCheckConfig | None = None
    outlier: OutlierConfig = field(default_factory=OutlierConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    adaptive_concurrency: AdaptiveConcurrencyConfig | None = None
    keepalive_timeout: float = 30.0
    #: Believe an endpoint's ``X-Mes-Edge-Not-Forwarded: connect-failure`` on a 502 (a sidecar's
    #: "the legacy behind me was never reached"): retried as unsent. Off: the header means nothing.
    trust_not_forwarded: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError("name", f"must match [A-Za-z0-9][A-Za-z0-9_.-]*, got {shown(self.name)}")
        if not isinstance(self.endpoints, tuple) or not self.endpoints:
            raise ConfigError("endpoints", "must be a non-empty list of base URLs, "
                                           f"got {shown(self.endpoints)}")
        normalized = tuple(_endpoint_url(f"endpoints[{i}]", e) for i, e in enumerate(self.endpoints))
        check(len(set(normalized)) == len(normalized), "endpoints", "contains duplicates")
        object.__setattr__(self, "endpoints", normalized)
        choice(self.balancer, "balancer", get_args(BalancerKind))
        if self.hash_header is not None:
            text(self.hash_header, "hash_header", non_empty=True)
        _instance("timeouts", self.timeouts, TimeoutPolicy)
        _instance("retry", self.retry, RetryPolicy)
        _instance("retry_budget", self.retry_budget, RetryBudgetConfig)
        if self.health_check is not None:
            _instance("health_check", self.health_check, HealthCheckConfig)
        _instance("outlier", self.outlier, OutlierConfig)
        _instance("breaker", self.breaker, BreakerConfig)
        adaptive = self.adaptive_concurrency
        if adaptive is not None:
            _instance("adaptive_concurrency", adaptive, AdaptiveConcurrencyConfig)
            if adaptive.max_limit > self.breaker.max_requests:
                # The breaker stays the hard cap; a limit above it would queue at the breaker
                # (FIFO, no priorities) instead of being shed by the limiter.
                raise ConfigError("adaptive_concurrency.max_limit", f"must be <= breaker.max_requests "
                                  f"({self.breaker.max_requests}), got {adaptive.max_limit}")
        number(self.keepalive_timeout, "keepalive_timeout", above=0)
        flag(self.trust_not_forwarded, "trust_not_forwarded")


def _endpoint_url(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a URL string, got {shown(value)}")
    try:
        url = URL(value)
    except ValueError as exc:
        raise ConfigError(name, f"invalid URL {redact_text(value)!r}: {exc}") from None
    check(url.scheme in ("http", "https") and bool(url.host), name,
          f"must be an http(s) base URL like http://127.0.0.1:9001, got {redact_text(value)!r}")
    check(not url.query_string and not url.fragment, name, "must not have a query or fragment")
    # never echo credentials: /config, logs, errors
    check(url.user is None and url.password is None, name, "must not carry credentials (user:password@); "
          "the gateway never sends them, and they would sit in the config in clear")
    # Requests are built as base + path_qs, so no trailing slash.
    return str(url).rstrip("/")


# ---------------------------------------------------------------- parsing from YAML-shaped data

_T = TypeVar("_T")
_Converter = Callable[[Any, str], Any]


def _kwargs(data: object, path: str, cls: type, converters: Mapping[str, _Converter],
            without: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The keyword arguments of ``cls`` that ``data`` names, each through its converter."""
    section = Section(data, path, field_names(cls, without=without))
    return {key: conv(value, section.at(key)) if (conv := converters.get(key)) else value
            for key, value in section.data.items()}


def _to_tuple(value: Any, path: str) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _to_frozenset(value: Any, path: str) -> Any:
    return frozenset(string_list(value, path))


_RETRY_CONVERTERS: Mapping[str, _Converter] = {"retry_on": _to_frozenset}


def parse_timeouts(data: Any, path: str) -> TimeoutPolicy:
    """Build a TimeoutPolicy from a mapping; errors name ``path.key``."""
    return merge_timeouts(TimeoutPolicy(), data, path)


def merge_timeouts(base: TimeoutPolicy, data: Any, path: str) -> TimeoutPolicy:
    """Override only the keys ``data`` names (per-route timeouts over the cluster's); None keeps ``base``."""
    if data is None:
        return base
    kwargs = _kwargs(mapping(data, path), path, TimeoutPolicy, {})
    with within(path):
        return dataclasses.replace(base, **kwargs)


def parse_retry(data: Any, path: str) -> RetryPolicy:
    """Build a RetryPolicy from a mapping; errors name ``path.key``."""
    return merge_retry(RetryPolicy(), data, path)


def merge_retry(base: RetryPolicy, data: Any, path: str) -> RetryPolicy:
    """Override only the keys ``data`` names (per-route retry over the cluster's); None keeps ``base``."""
    if data is None:
        return base
    kwargs = _kwargs(mapping(data, path), path, RetryPolicy, _RETRY_CONVERTERS)
    with within(path):
        return dataclasses.replace(base, **kwargs)


def _section(cls: type[_T], converters: Mapping[str, _Converter] | None = None, *,
             optional: bool = False) -> _Converter:
    """A converter building ``cls`` from a mapping (``optional``: null → None, the section is off)."""
    def convert(value: Any, path: str) -> _T | None:
        if value is None and optional:
            return None
        kwargs = _kwargs(mapping(value, path), path, cls, converters or {})
        with within(path):
            return cls(**kwargs)

    return convert


def _pairs(value: Any, path: str) -> Any:
    return tuple(sorted((str(k), v) for k, v in mapping(value, path).items()))


_CLUSTER_CONVERTERS: Mapping[str, _Converter] = {
    "endpoints": _to_tuple,
    "timeouts": parse_timeouts,
    "retry": parse_retry,
    "retry_budget": _section(RetryBudgetConfig),
    "health_check": _section(HealthCheckConfig, {"expected_statuses": _to_tuple}, optional=True),
    "outlier": _section(OutlierConfig),
    "breaker": _section(BreakerConfig),
    "adaptive_concurrency": _section(AdaptiveConcurrencyConfig, {"max_wait_by_priority": _pairs},
                                     optional=True),
}


def parse_cluster(name: str, data: Mapping[str, Any], *, path: str = "clusters") -> ClusterConfig:
    """Build a ClusterConfig from YAML-shaped data found at ``path.name``.

    ``name`` comes from the mapping key, so ``data`` must not repeat it.
    """
    here = f"{path}.{name}"
    kwargs = _kwargs(data, here, ClusterConfig, _CLUSTER_CONVERTERS, without=frozenset({"name"}))
    check("endpoints" in kwargs, f"{here}.endpoints", "is required")
    with within(here):
        return ClusterConfig(name=name, **kwargs)
