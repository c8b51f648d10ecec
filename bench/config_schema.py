"""The gateway's YAML schema (shapes, types, defaults, ranges) for msgspec and for pydantic.

Only what a schema library checks by itself: types (strict), unknown keys, defaults, numeric
ranges, choices. The rules across fields (a route's cluster exists, external routes live under
/partner/, per-route timeouts merge over the cluster's, defaults that depend on the listener,
``limits`` notation, endpoint URLs …) would still be code on top of either library; the
measured parse times of the libraries therefore do less than the project's parser does.

``define(base, bound)`` builds the classes on ``base`` (a msgspec ``Struct`` or a pydantic
``BaseModel`` subclass); ``bound(**kw)`` makes the range metadata (``msgspec.Meta`` or
``pydantic.Field``). Annotations are evaluated when the classes are built, as both need.
"""

# no ``from __future__ import annotations``: the nested classes are local and must resolve now
from collections.abc import Callable
from typing import Annotated, Any, Literal


def define(base: type, bound: Callable[..., Any]) -> type:
    """The top-level gateway config class built on ``base``."""
    Pos = Annotated[float, bound(gt=0)]
    NonNeg = Annotated[float, bound(ge=0)]
    Count = Annotated[int, bound(ge=1)]
    Size = Annotated[int, bound(ge=0)]
    Port = Annotated[int, bound(ge=0, le=65535)]

    class Listener(base):  # type: ignore[misc]
        host: str = "127.0.0.1"
        port: Port = 0
        trust_forwarded: bool = False
        keepalive_timeout: NonNeg = 75.0
        max_body_bytes: Size = 1024 * 1024
        body_timeout: NonNeg = 10.0
        max_header_bytes: Size = 8190
        max_header_block_bytes: Size = 32 * 1024
        max_header_fields: Annotated[int, bound(ge=8)] = 100
        forward_request_headers: list[str] | None = None

    class Listeners(base):  # type: ignore[misc]
        external: Listener | None = None
        internal: Listener | None = None

    class Admin(base):  # type: ignore[misc]
        host: str = "127.0.0.1"
        port: Port = 9901

    class Logging(base):  # type: ignore[misc]
        level: str = "INFO"
        access_log: str | None = None
        app_log: str | None = None

    class Timeouts(base):  # type: ignore[misc]
        connect: Pos = 1.0
        per_try: Pos = 5.0
        overall: Pos = 15.0

    RetryOn = Literal["connect-failure", "reset", "5xx", "gateway-error", "timeout"]

    class Retry(base):  # type: ignore[misc]
        attempts: Size = 2
        retry_on: list[RetryOn] | None = None  # None: all of them
        backoff_base: NonNeg = 0.025
        backoff_max: NonNeg = 0.25

    class RetryBudget(base):  # type: ignore[misc]
        budget_percent: Annotated[float, bound(ge=0, le=100)] = 20.0
        min_retry_concurrency: Size = 3

    class HealthCheck(base):  # type: ignore[misc]
        path: str = "/healthz"
        interval: Pos = 5.0
        timeout: Pos = 1.0
        healthy_threshold: Count = 2
        unhealthy_threshold: Count = 3
        expected_statuses: Annotated[list[Annotated[int, bound(ge=100, le=599)]],
                                    bound(min_length=2, max_length=2)] | None = None  # None: [200, 399]
        jitter: Annotated[float, bound(ge=0, lt=1)] = 0.1

    class Outlier(base):  # type: ignore[misc]
        consecutive_failures: Count = 5
        consecutive_gateway_failures: Count | None = None
        base_ejection_time: Pos = 30.0
        max_ejection_time: Pos = 300.0
        max_ejection_percent: Annotated[float, bound(ge=0, le=100)] = 50.0

    class Breaker(base):  # type: ignore[misc]
        max_requests: Count = 1024
        max_pending: Size = 128
        max_connections_per_endpoint: Count = 256

    class Adaptive(base):  # type: ignore[misc]
        algorithm: Literal["gradient"] = "gradient"
        initial_limit: Count = 20
        min_limit: Count = 2
        max_limit: Count = 200
        smoothing: Annotated[float, bound(gt=0, le=1)] = 0.2
        tolerance: Annotated[float, bound(ge=1)] = 1.5
        max_queue: Size = 50
        max_wait: Pos = 0.2
        max_wait_by_priority: dict[Literal["high", "normal", "low"], Pos] = {}
        sample_window: Pos = 1.0
        min_samples: Count = 10

    class Cluster(base):  # type: ignore[misc]
        endpoints: Annotated[list[str], bound(min_length=1)]
        balancer: Literal["round_robin", "least_request", "ewma", "consistent_hash"] = "least_request"
        hash_header: str | None = None
        timeouts: Timeouts = Timeouts()
        retry: Retry = Retry()
        retry_budget: RetryBudget = RetryBudget()
        health_check: HealthCheck | None = None
        outlier: Outlier = Outlier()
        breaker: Breaker = Breaker()
        adaptive_concurrency: Adaptive | None = None
        keepalive_timeout: Pos = 30.0

    class RouteTimeouts(base):  # type: ignore[misc]
        connect: Pos | None = None
        per_try: Pos | None = None
        overall: Pos | None = None

    class RouteRetry(base):  # type: ignore[misc]
        attempts: Size | None = None
        retry_on: list[RetryOn] | None = None
        backoff_base: NonNeg | None = None
        backoff_max: NonNeg | None = None

    class RouteAuth(base):  # type: ignore[misc]
        required: bool = True
        scopes: dict[str, str | list[str]] = {}

    class RouteRatelimit(base):  # type: ignore[misc]
        enabled: bool = True
        limits: dict[str, str] = {}
        on_backend_error: Literal["local", "open", "closed"] = "local"

    class RouteCache(base):  # type: ignore[misc]
        ttl: Pos
        key_params: list[str] | dict[str, str | int | None] = {}
        unknown_params: Literal["bypass", "ignore"] = "bypass"
        status_param: str = "status"
        max_object_bytes: Annotated[int, bound(ge=1, le=256 * 1024)] = 128 * 1024
        stale_while_revalidate: NonNeg = 0.0
        stale_if_error: NonNeg = 0.0
        vary_partner: bool | None = None
        honor_client_no_cache: bool | None = None

    class Route(base):  # type: ignore[misc]
        listener: Literal["external", "internal"]
        name: str | None = None
        prefix: str | None = None
        path: str | None = None
        methods: list[str] | None = None
        cluster: str | None = None
        handler: Literal["quotes"] | None = None
        rewrite_prefix: str | None = None
        timeouts: RouteTimeouts | None = None
        retry: RouteRetry | None = None
        max_body_bytes: Size | None = None
        body_timeout: NonNeg | None = None
        auth: RouteAuth | None = None
        ratelimit: bool | RouteRatelimit | None = None
        priority: Literal["high", "normal", "low"] | None = None
        cache: RouteCache | None = None
        partner_scope: Literal["orders"] | None = None

    class Failures(base):  # type: ignore[misc]
        limit: str | bool = "30/minute"
        max_addresses: Annotated[int, bound(ge=1, le=10_000_000)] = 65536
        log_sample: str = "10/10 seconds"

    class ApiKeys(base):  # type: ignore[misc]
        store: str | None = None
        pepper: str | None = None
        failures: Failures = Failures()

    class RateLimit(base):  # type: ignore[misc]
        redis_url: str | None = None
        key_prefix: str = "gateway:rl"
        socket_timeout: Annotated[float, bound(ge=0.005, le=5)] = 0.1
        heartbeat_interval: Annotated[float, bound(ge=0.1, le=60)] = 2.0
        default_tier: str = "default"
        tiers: dict[str, dict[str, str]] | None = None  # None: {default: {rate: 60/minute}}
        partners: dict[str, dict[str, str]] = {}

    class Cache(base):  # type: ignore[misc]
        backend: Literal["memory", "redis"] = "memory"
        redis_url: str | None = None
        memory_max_bytes: Count = 64 * 1024 * 1024
        key_prefix: str = "cache:"
        socket_timeout: Pos = 0.25
        collapse_timeout: Pos = 10.0
        events_redis_url: str | None = None
        events_channel: str = "orders:events"

    class Quotes(base):  # type: ignore[misc]
        redis_url: str = "redis://127.0.0.1:6379/0"
        prefix: str = "pricing"
        rules_version: str = "legacy-1"
        backlog_bound: Count = 500
        retry_after: Annotated[float, bound(ge=1)] = 30.0
        job_ttl: Annotated[int, bound(ge=60)] = 7 * 86400
        model_ttl: Annotated[int, bound(ge=60)] = 6 * 3600
        idempotency_ttl: Annotated[int, bound(ge=60)] = 86400
        inflight_ttl: Annotated[int, bound(ge=60)] = 7200
        probe_interval: Annotated[float, bound(ge=0.1)] = 5.0
        materials: Annotated[list[str], bound(min_length=1)] | None = None  # None: contracts.materials
        callback_hosts: list[str] = []
        allow_private_callbacks: bool = False
        model_store_bytes: Annotated[int, bound(ge=1 << 20)] = 256 << 20
        parse_workers: Count = 2
        parse_cpu_seconds: Count = 10
        parse_memory_bytes: Annotated[int, bound(ge=256 << 20)] = 1 << 30
        parse_timeout: Annotated[float, bound(ge=0.1)] = 30.0
        ascii_max_bytes: Annotated[int, bound(ge=1024)] = 8 << 20
        max_triangles: Count = 2_000_000
        upload_bytes: Annotated[int, bound(ge=1 << 20)] = 320 << 20
        upload_partner_bytes: Annotated[int, bound(ge=1 << 20)] = 160 << 20
        upload_deadline: Annotated[float, bound(ge=1)] = 300.0

    class OperatorAuth(base):  # type: ignore[misc]
        tokens: str | list[str] | None = None

    class Gateway(base):  # type: ignore[misc]
        listeners: Listeners
        clusters: dict[str, Cluster]
        admin: Admin = Admin()
        logging: Logging = Logging()
        routes: list[Route] = []
        drain_timeout: NonNeg = 20.0
        api_keys: ApiKeys = ApiKeys()
        ratelimit: RateLimit = RateLimit()
        cache: Cache = Cache()
        quotes: Quotes | None = None
        operator_auth: OperatorAuth = OperatorAuth()

    return Gateway


def msgspec_schema() -> tuple[type, Callable[[Any], Any]]:
    """The schema as frozen msgspec Structs (unknown fields refused) and its strict validator."""
    import msgspec

    class Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):  # type: ignore[misc,call-arg]
        pass

    def bound(**kw: Any) -> Any:
        return msgspec.Meta(**kw)

    top = define(Base, bound)
    return top, lambda data: msgspec.convert(data, top, strict=True)


def pydantic_schema() -> tuple[type, Callable[[Any], Any]]:
    """The schema as frozen, strict pydantic models (extra keys forbidden) and its validator."""
    import pydantic

    class Base(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True)

    top = define(Base, pydantic.Field)
    return top, top.model_validate  # type: ignore[attr-defined]
