"""Typed, frozen cluster configuration, validated on construction.

Every dataclass checks its own fields in ``__post_init__`` and raises
``ConfigError("field: problem")``; the ``parse_*`` functions turn YAML-shaped
mappings into these objects, reject unknown keys and prefix the full path, e.g.
``clusters.mes.health_check.interval: must be > 0``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast, get_args

from yarl import URL

from gateway.errors import ConfigError
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
RETRY_ON_VALUES = frozenset({"connect-failure", "reset", "5xx", "gateway-error", "timeout"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _number(name: str, value: object, *, minimum: float = 0.0, allow_equal: bool = False) -> None:
    # bool is an int subclass; ``interval: yes`` in YAML must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: must be a number, got {type(value).__name__}")
    if value < minimum or (value == minimum and not allow_equal):
        raise ConfigError(f"{name}: must be {'>=' if allow_equal else '>'} {minimum:g}")


def _integer(name: str, value: object, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}")


def _instance(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"{name}: must be a mapping of {kind.__name__} settings")


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeoutPolicy:
    """Seconds allowed to connect, per attempt (up to response headers), and overall."""

    connect: float = 1.0
    per_try: float = 5.0
    overall: float = 15.0

    def __post_init__(self) -> None:
        for name in ("connect", "per_try", "overall"):
            _number(name, getattr(self, name))


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retries after the first try, on which failures (Envoy names), with jittered backoff."""

    attempts: int = 2
    retry_on: frozenset[str] = frozenset(RETRY_ON_VALUES)
    backoff_base: float = 0.025
    backoff_max: float = 0.25

    def __post_init__(self) -> None:
        _integer("attempts", self.attempts)
        if not isinstance(self.retry_on, frozenset):
            raise ConfigError("retry_on: must be a set of strings")
        unknown = sorted(str(v) for v in self.retry_on - RETRY_ON_VALUES)
        if unknown:
            raise ConfigError(
                f"retry_on: unknown value {unknown[0]!r} (expected one of {sorted(RETRY_ON_VALUES)})"
            )
        _number("backoff_base", self.backoff_base, allow_equal=True)
        _number("backoff_max", self.backoff_max, allow_equal=True)
        if self.backoff_max < self.backoff_base:
            raise ConfigError("backoff_max: must be >= backoff_base")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryBudgetConfig:
    """Active retries may not exceed max(min_retry_concurrency, budget_percent% of active)."""

    budget_percent: float = 20.0
    min_retry_concurrency: int = 3

    def __post_init__(self) -> None:
        _number("budget_percent", self.budget_percent, allow_equal=True)
        if self.budget_percent > 100:
            raise ConfigError("budget_percent: must be <= 100")
        _integer("min_retry_concurrency", self.min_retry_concurrency)


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
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ConfigError("path: must be a string starting with '/'")
        _number("interval", self.interval)
        _number("timeout", self.timeout)
        _integer("healthy_threshold", self.healthy_threshold, minimum=1)
        _integer("unhealthy_threshold", self.unhealthy_threshold, minimum=1)
        low_high = self.expected_statuses
        if (
            not isinstance(low_high, tuple)
            or len(low_high) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in low_high)
            or not 100 <= low_high[0] <= low_high[1] <= 599
        ):
            raise ConfigError("expected_statuses: must be [low, high] with 100 <= low <= high <= 599")
        _number("jitter", self.jitter, allow_equal=True)
        if self.jitter >= 1:
            raise ConfigError("jitter: must be < 1 (a fraction of interval)")


@dataclass(frozen=True, kw_only=True, slots=True)
class OutlierConfig:
    """Passive ejection; ``consecutive_gateway_failures=None`` disables that detector."""

    consecutive_failures: int = 5
    consecutive_gateway_failures: int | None = None
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0

    def __post_init__(self) -> None:
        _integer("consecutive_failures", self.consecutive_failures, minimum=1)
        if self.consecutive_gateway_failures is not None:
            _integer("consecutive_gateway_failures", self.consecutive_gateway_failures, minimum=1)
        _number("base_ejection_time", self.base_ejection_time)
        _number("max_ejection_time", self.max_ejection_time)
        if self.max_ejection_time < self.base_ejection_time:
            raise ConfigError("max_ejection_time: must be >= base_ejection_time")
        _number("max_ejection_percent", self.max_ejection_percent, allow_equal=True)
        if self.max_ejection_percent > 100:
            raise ConfigError("max_ejection_percent: must be <= 100")


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerConfig:
    """Per-cluster in-flight limit, bounded wait queue, and per-endpoint connection pool."""

    max_requests: int = 1024
    max_pending: int = 128
    max_connections_per_endpoint: int = 256

    def __post_init__(self) -> None:
        _integer("max_requests", self.max_requests, minimum=1)
        _integer("max_pending", self.max_pending)
        _integer("max_connections_per_endpoint", self.max_connections_per_endpoint, minimum=1)


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
        if self.algorithm != "gradient":
            raise ConfigError("algorithm: must be 'gradient'")
        _integer("min_limit", self.min_limit, minimum=1)
        _integer("initial_limit", self.initial_limit, minimum=1)
        _integer("max_limit", self.max_limit, minimum=1)
        if self.initial_limit < self.min_limit:
            raise ConfigError("initial_limit: must be >= min_limit")
        if self.max_limit < self.initial_limit:
            raise ConfigError("max_limit: must be >= initial_limit")
        _number("smoothing", self.smoothing)
        if self.smoothing > 1:
            raise ConfigError("smoothing: must be <= 1")
        _number("tolerance", self.tolerance, minimum=1.0, allow_equal=True)
        _integer("max_queue", self.max_queue)
        _number("max_wait", self.max_wait)
        for priority, seconds in self.max_wait_by_priority:
            if priority not in ("high", "normal", "low"):
                raise ConfigError(f"max_wait_by_priority: unknown priority {priority!r} (high, normal, low)")
            _number(f"max_wait_by_priority.{priority}", seconds)
        _number("sample_window", self.sample_window)
        _integer("min_samples", self.min_samples, minimum=1)


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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError("name: must match [A-Za-z0-9][A-Za-z0-9_.-]*")
        if not isinstance(self.endpoints, tuple) or not self.endpoints:
            raise ConfigError("endpoints: must be a non-empty list of base URLs")
        normalized = tuple(_endpoint_url(f"endpoints[{i}]", e) for i, e in enumerate(self.endpoints))
        if len(set(normalized)) != len(normalized):
            raise ConfigError("endpoints: contains duplicates")
        object.__setattr__(self, "endpoints", normalized)
        if self.balancer not in get_args(BalancerKind):
            raise ConfigError(f"balancer: must be one of {list(get_args(BalancerKind))}")
        if self.hash_header is not None and (not isinstance(self.hash_header, str) or not self.hash_header):
            raise ConfigError("hash_header: must be a non-empty header name")
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
                raise ConfigError("adaptive_concurrency.max_limit: must be <= breaker.max_requests")
        _number("keepalive_timeout", self.keepalive_timeout)


def _endpoint_url(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: must be a URL string")
    try:
        url = URL(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: invalid URL {redact_text(value)!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{name}: must be an http(s) base URL like http://127.0.0.1:9001, "
                          f"got {redact_text(value)!r}")
    if url.query_string or url.fragment:
        raise ConfigError(f"{name}: must not have a query or fragment")
    if url.user is not None or url.password is not None:  # never echo them: /config, logs, errors
        raise ConfigError(f"{name}: must not carry credentials (user:password@); the gateway never "
                          "sends them, and they would sit in the config in clear")
    # Requests are built as base + path_qs, so no trailing slash.
    return str(url).rstrip("/")


# ---------------------------------------------------------------- parsing from YAML-shaped data

_T = TypeVar("_T")
_Converter = Callable[[Any, str], Any]


def _known_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _check_mapping(data: object, path: str, known: list[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown key {key!r}{hint}")
    return cast("Mapping[str, Any]", data)


def _kwargs(data: Mapping[str, Any], path: str, converters: Mapping[str, _Converter]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        conv = converters.get(key)
        out[key] = conv(value, f"{path}.{key}") if conv else value
    return out


def _construct(path: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except ConfigError as exc:
        raise ConfigError(f"{path}.{exc.detail}") from None


def _to_tuple(value: Any, path: str) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _to_frozenset(value: Any, path: str) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(value)
    raise ConfigError(f"{path}: must be a list of strings")


_RETRY_CONVERTERS: Mapping[str, _Converter] = {"retry_on": _to_frozenset}


def parse_timeouts(data: Any, path: str) -> TimeoutPolicy:
    """Build a TimeoutPolicy from a mapping; errors name ``path.key``."""
    return merge_timeouts(TimeoutPolicy(), data, path)


def merge_timeouts(base: TimeoutPolicy, data: Any, path: str) -> TimeoutPolicy:
    """Override only the keys ``data`` names (per-route timeouts over the cluster's); None keeps ``base``."""
    if data is None:
        return base
    kwargs = _kwargs(_check_mapping(data, path, _known_keys(TimeoutPolicy)), path, {})
    return _construct(path, lambda: dataclasses.replace(base, **kwargs))


def parse_retry(data: Any, path: str) -> RetryPolicy:
    """Build a RetryPolicy from a mapping; errors name ``path.key``."""
    return merge_retry(RetryPolicy(), data, path)


def merge_retry(base: RetryPolicy, data: Any, path: str) -> RetryPolicy:
    """Override only the keys ``data`` names (per-route retry over the cluster's); None keeps ``base``."""
    if data is None:
        return base
    kwargs = _kwargs(_check_mapping(data, path, _known_keys(RetryPolicy)), path, _RETRY_CONVERTERS)
    return _construct(path, lambda: dataclasses.replace(base, **kwargs))


def _section(cls: type[_T], converters: Mapping[str, _Converter] | None = None) -> _Converter:
    def convert(value: Any, path: str) -> _T:
        kwargs = _kwargs(_check_mapping(value, path, _known_keys(cls)), path, converters or {})
        return _construct(path, lambda: cls(**kwargs))

    return convert


def _optional_health(value: Any, path: str) -> HealthCheckConfig | None:
    if value is None:
        return None
    convert = _section(HealthCheckConfig, {"expected_statuses": _to_tuple})
    return cast("HealthCheckConfig", convert(value, path))


def _pairs(value: Any, path: str) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), v) for k, v in value.items()))
    raise ConfigError(f"{path}: must be a mapping like {{high: 2.0}}")


def _optional_adaptive(value: Any, path: str) -> AdaptiveConcurrencyConfig | None:
    if value is None:
        return None
    convert = _section(AdaptiveConcurrencyConfig, {"max_wait_by_priority": _pairs})
    return cast("AdaptiveConcurrencyConfig", convert(value, path))


_CLUSTER_CONVERTERS: Mapping[str, _Converter] = {
    "endpoints": _to_tuple,
    "timeouts": parse_timeouts,
    "retry": parse_retry,
    "retry_budget": _section(RetryBudgetConfig),
    "health_check": _optional_health,
    "outlier": _section(OutlierConfig),
    "breaker": _section(BreakerConfig),
    "adaptive_concurrency": _optional_adaptive,
}


def parse_cluster(name: str, data: Mapping[str, Any], *, path: str = "clusters") -> ClusterConfig:
    """Build a ClusterConfig from YAML-shaped data found at ``path.name``.

    ``name`` comes from the mapping key, so ``data`` must not repeat it.
    """
    here = f"{path}.{name}"
    known = [k for k in _known_keys(ClusterConfig) if k != "name"]
    kwargs = _kwargs(_check_mapping(data, here, known), here, _CLUSTER_CONVERTERS)
    if "endpoints" not in kwargs:
        raise ConfigError(f"{here}.endpoints: is required")
    return _construct(here, lambda: ClusterConfig(name=name, **kwargs))
