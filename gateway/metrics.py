"""Every Prometheus metric of the gateway, created once on the default registry.

Works unchanged in ``prometheus_client`` multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``
set before import): every Gauge names its ``multiprocess_mode`` explicitly.
Label values are bounded: listener/route names come from config (route *template*,
never a raw path), ``endpoint`` is a configured endpoint URL, ``cluster`` a
configured cluster name, and ``status_class``/``reason``/``outcome`` are small
fixed sets. Each metric is documented in ``docs/metrics-gateway.md``.
"""

from __future__ import annotations

import weakref
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from contracts.order_events import REJECT_REASONS
from resilience.shedding import SHED_REASONS

__all__ = [
    "ADAPTIVE_CONCURRENCY_LIMIT",
    "ADAPTIVE_QUEUE_LENGTH",
    "AUTH_FAILURES",
    "AUTH_THROTTLED",
    "CACHE_BACKEND_ERRORS",
    "CACHE_BYTES",
    "CACHE_COLLAPSED",
    "CACHE_EVENTS_CONNECTED",
    "CACHE_EVENTS_REJECTED",
    "CACHE_EVICTIONS",
    "CACHE_INVALIDATIONS",
    "CACHE_REQUESTS",
    "CIRCUIT_BREAKER_REJECTIONS",
    "CONFIG_LAST_RELOAD",
    "CONFIG_RELOADS",
    "HEALTH_CHECKS",
    "LOAD_SHED",
    "MODEL_CHECKS",
    "MODEL_CHECK_DURATION",
    "MODEL_CHECK_RESTARTS",
    "OPERATOR_AUTH_FAILURES",
    "PARTNER_SCOPE_REFUSALS",
    "PARTNER_VALIDATION_FAILURES",
    "RATELIMIT_BACKEND_ERRORS",
    "RATELIMIT_DECISIONS",
    "RATELIMIT_DEGRADED",
    "RATELIMIT_DEGRADED_SECONDS",
    "RATELIMIT_ERROR_REASONS",
    "RATELIMIT_FAILED_PROBES",
    "RATELIMIT_INSTANCES",
    "RATELIMIT_MODE_SWITCHES",
    "REDIS_FAILOVERS",
    "REDIS_KINDS",
    "REDIS_RECONNECTS",
    "REDIS_TOPOLOGY",
    "REQUESTS",
    "REQUESTS_IN_FLIGHT",
    "REQUEST_BODY_REJECTED",
    "REQUEST_DURATION",
    "UPLOAD_BYTES_IN_FLIGHT",
    "UPLOAD_REFUSALS",
    "UPSTREAM_ACTIVE_REQUESTS",
    "UPSTREAM_CONNECTIONS",
    "UPSTREAM_CONNECTIONS_OPENED",
    "UPSTREAM_EJECTIONS",
    "UPSTREAM_ENDPOINT_EJECTED",
    "UPSTREAM_ENDPOINT_HEALTHY",
    "UPSTREAM_HEALTHY_ENDPOINTS",
    "UPSTREAM_PENDING_REQUESTS",
    "UPSTREAM_REQUESTS",
    "UPSTREAM_REQUEST_DURATION",
    "UPSTREAM_RETRIES",
    "UPSTREAM_RETRIES_UNSENT",
    "UPSTREAM_RETRY_BUDGET_EXHAUSTED",
    "UPSTREAM_STALE_CONNECTION_REPLAYS",
    "USAGE_COUNTED",
    "USAGE_LOST",
    "USAGE_PENDING",
    "USAGE_WRITES",
    "status_class",
]

#: Latency buckets shared by the front and upstream histograms (seconds). The MES
#: answers list queries in milliseconds but proxied slow calls take up to 30 s.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)

# Precomputed so the hot path does no string formatting.
_STATUS_CLASSES: tuple[str, ...] = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


class GaugeSource(Protocol):
    """Something whose hot-path counters become gauges only when published."""

    def publish_gauges(self) -> None: ...


_gauge_sources: weakref.WeakSet[GaugeSource] = weakref.WeakSet()


def register_gauge_source(source: GaugeSource) -> None:
    """Publish ``source``'s gauges on every scrape and once a second (see ``publish_gauges``).

    In-flight style gauges are kept as plain ints on the hot path (no lock, no mmap write) and
    copied into their Gauge here, like Envoy's periodic stats flush.
    """
    _gauge_sources.add(source)


def publish_gauges() -> None:
    """Copy every registered source's live counts into its gauges."""
    for source in list(_gauge_sources):
        source.publish_gauges()


def status_class(status: int) -> str:
    """Map an HTTP status to its bounded label value ``"2xx"`` … ``"5xx"``."""
    index = status // 100
    return _STATUS_CLASSES[index] if 0 <= index <= 5 else "other"


# ---------------------------------------------------------------- front side (listeners)

REQUESTS = Counter(
    "gateway_requests_total",
    "Requests answered by the gateway.",
    ("listener", "route", "method", "status_class"),
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Time from request received to response finished, as seen by the gateway.",
    ("listener", "route"),
    buckets=DURATION_BUCKETS,
)
REQUESTS_IN_FLIGHT = Gauge(
    "gateway_requests_in_flight",
    "Requests currently being handled.",
    ("listener",),
    multiprocess_mode="livesum",
)
REQUEST_BODY_REJECTED = Counter(
    "gateway_request_body_rejected_total",
    "Requests rejected because of their body (too large, too slow, malformed).",
    ("listener", "reason"),
)
RESPONSES_ABORTED = Counter(
    "gateway_responses_aborted_total",
    "Responses cut after their headers were sent because the upstream failed mid-body.",
    ("listener",),
)
PARTNER_SCOPE_REFUSALS = Counter(
    "gateway_partner_scope_refusals_total",
    "Partner-scoped answers refused with 502 because they could not be checked or were not the "
    "caller's (foreign_item|foreign_create|too_large|unreadable|unbuffered).",
    ("reason",),
)
PARTNER_VALIDATION_FAILURES = Counter(
    "gateway_partner_validation_failures_total",
    "Partner requests refused (400/404/422) because they violate the partner API document, by "
    "operationId and partner tier (never partner id); every operation x configured tier at 0 from start-up.",
    ("operation", "tier"),
)
PROTOCOL_ERRORS = Counter(
    "gateway_protocol_errors_total",
    "Connections answered with an error before routing: malformed request line or headers.",
    ("listener", "status"),
)
CONFIG_RELOADS = Counter(
    "gateway_config_reloads_total",
    "Configuration reload attempts by outcome (success|failure).",
    ("outcome",),
)
CONFIG_LAST_RELOAD = Gauge(
    "gateway_config_last_reload_success_timestamp_seconds",
    "Unix time of the last successful configuration load or reload.",
    multiprocess_mode="max",
)

# ---------------------------------------------------------------- cluster manager

UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Attempts sent to an endpoint (retries count separately), by outcome.",
    ("cluster", "endpoint", "status_class"),
)
#: Outcomes of an attempt (``status_class`` label), each exported at 0 per endpoint from start-up.
UPSTREAM_OUTCOMES = ("1xx", "2xx", "3xx", "4xx", "5xx", "connect_error", "timeout", "reset")
UPSTREAM_REQUEST_DURATION = Histogram(
    "gateway_upstream_request_duration_seconds",
    "Per attempt: time from sending to the endpoint's response headers (or the error).",
    ("cluster",),
    buckets=DURATION_BUCKETS,
)
UPSTREAM_ENDPOINT_HEALTHY = Gauge(
    "gateway_upstream_endpoint_healthy",
    "1 if the endpoint passes active health checks, else 0.",
    ("cluster", "endpoint"),
    # min over worker processes: one worker seeing it down is worth showing.
    multiprocess_mode="livemin",
)
UPSTREAM_ENDPOINT_EJECTED = Gauge(
    "gateway_upstream_endpoint_ejected",
    "1 if passive outlier detection currently ejects the endpoint, else 0.",
    ("cluster", "endpoint"),
    multiprocess_mode="livemax",
)
UPSTREAM_HEALTHY_ENDPOINTS = Gauge(
    "gateway_upstream_healthy_endpoints",
    "Endpoints eligible for traffic (healthy and not ejected).",
    ("cluster",),
    multiprocess_mode="livemin",
)
UPSTREAM_EJECTIONS = Counter(
    "gateway_upstream_ejections_total",
    "Outlier ejections of an endpoint.",
    ("cluster", "endpoint"),
)
UPSTREAM_RETRIES = Counter(
    "gateway_upstream_retries_total",
    "Retries sent, by the reason of the failed attempt.",
    ("cluster", "reason"),
)
UPSTREAM_RETRIES_UNSENT = Counter(
    "gateway_upstream_retries_unsent_total",
    "Retries of attempts the endpoint never saw (not charged to the retry budget), by reason.",
    ("cluster", "reason"),
)
#: ``reason`` of an unsent attempt's retry, each exported at 0 per cluster from start-up.
UNSENT_RETRY_REASONS = ("connect-failure", "reset-before-request", "upstream-connect-failure")
UPSTREAM_RETRY_BUDGET_EXHAUSTED = Counter(
    "gateway_upstream_retry_budget_exhausted_total",
    "Retries that were wanted but refused by the retry budget.",
    ("cluster",),
)
CIRCUIT_BREAKER_REJECTIONS = Counter(
    "gateway_circuit_breaker_rejections_total",
    "Requests rejected by the cluster's circuit breaker (max_requests|max_pending|pending_timeout).",
    ("cluster", "reason"),
)
UPSTREAM_ACTIVE_REQUESTS = Gauge(
    "gateway_upstream_active_requests",
    "Requests admitted by the cluster's breaker and not yet finished.",
    ("cluster",),
    multiprocess_mode="livesum",
)
UPSTREAM_PENDING_REQUESTS = Gauge(
    "gateway_upstream_pending_requests",
    "Requests waiting for the cluster's breaker to admit them.",
    ("cluster",),
    multiprocess_mode="livesum",
)
UPSTREAM_CONNECTIONS = Gauge(
    "gateway_upstream_connections",
    "Open keep-alive connections to the endpoint by state (idle|in_use), summed over workers.",
    ("cluster", "endpoint", "state"),
    multiprocess_mode="livesum",
)
UPSTREAM_CONNECTIONS_OPENED = Counter(
    "gateway_upstream_connections_opened_total",
    "TCP connections opened to the endpoint (a steady climb under constant load means no reuse).",
    ("cluster", "endpoint"),
)
UPSTREAM_STALE_CONNECTION_REPLAYS = Counter(
    "gateway_upstream_stale_connection_replays_total",
    "Idempotent requests re-sent on a fresh connection because the endpoint had closed the "
    "kept-alive one (nothing came back): the keep-alive race, not an endpoint failure.",
    ("cluster", "endpoint"),
)
HEALTH_CHECKS = Counter(
    "gateway_health_checks_total",
    "Active health check probes by outcome (success|failure).",
    ("cluster", "endpoint", "outcome"),
)

# ---------------------------------------------------------------- load shedding (adaptive concurrency)

ADAPTIVE_CONCURRENCY_LIMIT = Gauge(
    "gateway_adaptive_concurrency_limit",
    "Current adaptive concurrency limit of the cluster (summed over worker processes).",
    ("cluster",),
    multiprocess_mode="livesum",
)
ADAPTIVE_QUEUE_LENGTH = Gauge(
    "gateway_adaptive_queue_length",
    "Requests waiting in the cluster's adaptive limiter priority queue.",
    ("cluster",),
    multiprocess_mode="livesum",
)
LOAD_SHED = Counter(
    "gateway_load_shed",
    "Requests shed by the adaptive limiter (503), by priority and reason "
    "(queue_full|wait_timeout|evicted).",
    ("cluster", "priority", "reason"),
)
#: ``reason`` values of ``gateway_load_shed_total``: every (priority, reason) of an adaptive cluster
#: exists at 0 from start-up, so GatewayLoadShedding's increase() counts the first shed request.
LOAD_SHED_REASONS = SHED_REASONS

# ---------------------------------------------------------------- partner edge (auth, rate limits)

AUTH_FAILURES = Counter(
    "gateway_auth_failures_total",
    "Requests refused by API-key authentication (missing|invalid|revoked|forbidden).",
    ("listener", "reason"),
)
AUTH_THROTTLED = Counter(
    "gateway_auth_throttled_total",
    "Requests answered 429 before the key lookup: their client address used up its budget of "
    "refused API-key attempts (api_keys.failures.limit).",
    ("listener",),
)
OPERATOR_AUTH_FAILURES = Counter(
    "gateway_operator_auth_failures_total",
    "Requests refused by operator-token authentication (internal listener, admin /config and "
    "/cache/purge), by reason (missing|invalid).",
    ("listener", "reason"),
)
RATELIMIT_DECISIONS = Counter(
    "gateway_ratelimit_decisions_total",
    "Rate-limit decisions by partner tier (never partner id), route and decision (allowed|limited).",
    ("tier", "route", "decision"),
)
RATELIMIT_ERROR_REASONS = ("timeout", "connection", "reply", "other")  # gateway.ratelimit.failures
RATELIMIT_BACKEND_ERRORS = Counter(
    "gateway_ratelimit_backend_errors_total",
    "Failed calls to the shared rate-limit store (Redis), request path and heartbeat, by reason: "
    "timeout (no reply in ratelimit.socket_timeout), connection (refused, reset, closed, auth), "
    "reply (an error reply: READONLY, CLUSTERDOWN ...), other (unclassified).",
    ("reason",),
)
RATELIMIT_FAILED_PROBES = Gauge(
    "gateway_ratelimit_failed_probes",
    "Heartbeat probes of the rate-limit store that failed in a row (0 after one that succeeded); "
    "the worst process of the instance.",
    multiprocess_mode="livemax",
)
RATELIMIT_DEGRADED = Gauge(
    "gateway_ratelimit_degraded",
    "1 while this instance enforces local shares because Redis is unreachable, else 0.",
    multiprocess_mode="livemax",
)
RATELIMIT_MODE_SWITCHES = Counter(
    "gateway_ratelimit_mode_switches_total",
    "Switches between shared (Redis) and degraded (local) rate limiting, by the mode entered.",
    ("mode",),
)
RATELIMIT_DEGRADED_SECONDS = Counter(
    "gateway_ratelimit_degraded_seconds",
    "Seconds this instance spent in degraded mode (local shares), counted per heartbeat interval.",
)
REDIS_KINDS = ("single", "sentinel", "cluster")  # sharedstate.redis_spec.KINDS
REDIS_TOPOLOGY = Gauge(
    "gateway_redis_topology",
    "Info: 1 for the kind of the shared-state Redis spec of ratelimit.redis_url "
    "(single|sentinel|cluster), 0 for the others.",
    ("kind",),
    multiprocess_mode="livemax",
)
REDIS_FAILOVERS = Counter(
    "gateway_redis_failovers_total",
    "Primary changes seen by the rate limiter's heartbeat (Sentinel: a new primary address; "
    "Cluster: a changed set of primaries).",
)
REDIS_RECONNECTS = Counter(
    "gateway_redis_reconnects_total",
    "Shared-state connections re-established after a loss, by user (ratelimit: back from degraded "
    "mode; cache_events: the order-event feed re-subscribed).",
    ("user",),
)
REDIS_FAILOVER_WAITS = Counter(
    "gateway_redis_failover_waits_total",
    "Requests that met a transient Redis failover error (sharedstate.errors) and waited it out, by "
    "user (quotes) and outcome (served: Redis answered within the wait; gave_up: 503 after it).",
    ("user", "outcome"),
)
RATELIMIT_INSTANCES = Gauge(
    "gateway_ratelimit_instances",
    "Live gateway instances seen in the Redis heartbeat (sizes the degraded-mode share).",
    multiprocess_mode="livemax",
)

# ---------------------------------------------------------------- response cache (gateway/cache/)

CACHE_REQUESTS = Counter(
    "gateway_cache_requests_total",
    "Reads on cached routes by result (hit|stale|stale_if_error|collapsed|miss|expired|invalidated"
    "|refresh|bypass).",
    ("route", "result"),
)
CACHE_COLLAPSED = Counter(
    "gateway_cache_collapsed_total",
    "Concurrent misses that waited for another request's upstream answer instead of asking the MES.",
    ("route",),
)
#: ``result`` values of ``gateway_cache_requests_total``, each at 0 per cached route from start-up.
CACHE_RESULTS = ("hit", "stale", "stale_if_error", "collapsed", "miss", "expired", "invalidated", "refresh",
                 "bypass")
CACHE_INVALIDATIONS = Counter(
    "gateway_cache_invalidations_total",
    "Version bumps by reason (event|write|subscribe|purge_key|purge_route|purge_order|purge_all).",
    ("reason",),
)
CACHE_EVICTIONS = Counter(
    "gateway_cache_evictions_total",
    "Entries evicted from the in-memory store to stay within its byte bound.",
)
CACHE_BYTES = Gauge(
    "gateway_cache_bytes",
    "Bytes held by the in-memory cache store (summed over worker processes).",
    multiprocess_mode="livesum",
)
CACHE_BACKEND_ERRORS = Counter(
    "gateway_cache_backend_errors_total",
    "Failed cache store calls by operation (lookup|store|bump|lock|events); the request bypasses the cache.",
    ("operation",),
)
CACHE_EVENTS_CONNECTED = Gauge(
    "gateway_cache_events_connected",
    "1 while subscribed to the order-change event feed (cache in use), else 0.",
    multiprocess_mode="livemin",
)
CACHE_EVENTS_REJECTED = Counter(
    "gateway_cache_events_rejected_total",
    "Order-change events the cache could not read, by reason (missing_version|unknown_version|"
    "malformed); each one invalidates everything.",
    ("reason",),
)

# ------------------------------------------------------------ quote uploads (gateway/quotes/model_pool.py)

MODEL_CHECK_OUTCOMES = ("ok", "invalid", "limit", "busy", "error")
MODEL_CHECKS = Counter(
    "gateway_model_checks_total",
    "STL model checks of quote uploads by outcome (ok|invalid|limit|busy|error): limit = the check "
    "ran out of CPU time or memory, busy = no check process free in time.",
    ("outcome",),
)
MODEL_CHECK_DURATION = Histogram(
    "gateway_model_check_duration_seconds",
    "Time of one model check, waiting for a free check process included, by outcome.",
    ("outcome",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MODEL_CHECK_RESTARTS = Counter(
    "gateway_model_check_restarts_total",
    "Model-check processes replaced because one died (CPU/memory limit) or outlived its time.",
)
UPLOAD_BYTES_IN_FLIGHT = Gauge(
    "gateway_upload_bytes_in_flight",
    "Bytes reserved by quote uploads being received or checked (gateway/quotes/upload_budget.py).",
    multiprocess_mode="livesum",
)
UPLOAD_REFUSALS = Counter(
    "gateway_upload_refusals_total",
    "Quote uploads refused before or while reading them: process_budget (503), partner_budget (429), "
    "deadline (408: the body took longer than quotes.upload_deadline).",
    ("reason",),
)
# ---------------------------------------------------------------- usage accounting (gateway/usage/)
# per partner per day in Redis, never here: these count the accounting itself (kinds, outcomes fixed)
USAGE_COUNTED = Counter(
    "gateway_usage_counted_total",
    "Partner events counted for usage accounting, by kind (requests, orders, quotes, "
    "models_deduplicated, rate_limited, shed); the partner is in Redis, never a label.",
    ("kind",),
)
USAGE_WRITES = Counter(
    "gateway_usage_writes_total",
    "Usage batch writes to Redis, one per partner per flush: ok, duplicate (a retried batch Redis "
    "had already applied), failed (kept locally, retried).",
    ("outcome",),
)
USAGE_PENDING = Gauge(
    "gateway_usage_pending_events",
    "Usage events counted but not yet in Redis (the flush backlog; grows while Redis is away).",
    multiprocess_mode="livesum",
)
USAGE_LOST = Counter(
    "gateway_usage_lost_total",
    "Usage events dropped: more than usage.max_pending_cells waiting, or still unflushed at shutdown.",
    ("reason",),
)
CACHE_BACKEND_OPERATIONS = ("lookup", "store", "bump", "lock", "events")
for _operation in CACHE_BACKEND_OPERATIONS:  # GatewayCacheBackendErrors: rate() sees the first error
    CACHE_BACKEND_ERRORS.labels(operation=_operation)
for _rejected in REJECT_REASONS:
    CACHE_EVENTS_REJECTED.labels(reason=_rejected)
for _reason in ("process_budget", "partner_budget", "deadline"):
    UPLOAD_REFUSALS.labels(reason=_reason)
for _outcome in MODEL_CHECK_OUTCOMES:  # every series exists at 0 from start-up
    MODEL_CHECKS.labels(outcome=_outcome)
    MODEL_CHECK_DURATION.labels(outcome=_outcome)
for _kind in REDIS_KINDS:  # gateway_redis_topology: every kind at 0 until a limiter publishes its own
    REDIS_TOPOLOGY.labels(kind=_kind).set(0)
for _reason in RATELIMIT_ERROR_REASONS:  # GatewayRateLimitBackendUnreachable: rate() sees the first
    RATELIMIT_BACKEND_ERRORS.labels(reason=_reason)
for _user in ("ratelimit", "cache_events"):
    REDIS_RECONNECTS.labels(user=_user)
for _outcome in ("served", "gave_up"):
    REDIS_FAILOVER_WAITS.labels(user="quotes", outcome=_outcome)
for _kind in ("requests", "orders", "quotes", "models_deduplicated", "rate_limited", "shed"):
    USAGE_COUNTED.labels(kind=_kind)
for _outcome in ("ok", "duplicate", "failed"):  # GatewayUsageWritesFailing: rate() sees the first failure
    USAGE_WRITES.labels(outcome=_outcome)
for _reason in ("backlog_full", "shutdown"):
    USAGE_LOST.labels(reason=_reason)
