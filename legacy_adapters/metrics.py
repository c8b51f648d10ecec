"""Every ``pricing_*`` metric of the pricing pool, created once (docs/pricing.md, "Metrics").

Two sides, one module: the gateway records submissions and publishes the queue state it
reads from Redis (gauges, one sample per gateway — ``max()`` them); each worker records the
jobs it runs. Labels are small fixed sets (``outcome``, ``kind``, ``via``, ``reason``, ``tier``;
never a partner id).
The legacy MES's own ``pricing_calculations_in_progress`` (sidecar probe) is a different family.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import Counter, Gauge, Histogram

# --- submission side (gateway) --------------------------------------------------------------
SUBMISSIONS = Counter("pricing_submissions_total", "Quote submissions by outcome "
                      "(queued, attached, cached, replay, full, store_full, invalid, too_large, unsupported)",
                      ["outcome"])
CACHE_HITS = Counter("pricing_cache_hits_total", "Submissions answered without a new legacy call: "
                     "kind=exact|geometric, via=cache (stored price) | inflight (joined a running job)",
                     ["kind", "via"])
for _kind in ("exact", "geometric"):  # every combination at 0: a dashboard reads 0, not "no data"
    for _via in ("cache", "inflight"):
        CACHE_HITS.labels(kind=_kind, via=_via)
# priced models per partner per day, written by each worker (sharedstate/usage_counts.py)
USAGE_WRITES = Counter("pricing_usage_writes_total", "Priced-model usage writes: ok, duplicate (the job "
                       "was counted before: a redelivery), failed (not counted; logged with the partner)",
                       ["outcome"])
for _outcome in ("ok", "duplicate", "failed"):
    USAGE_WRITES.labels(outcome=_outcome)
# Queue state as read from Redis by the gateway's queue probe (every few seconds).
_MODE: Final[Literal["livemax"]] = "livemax"  # every gateway reads the same Redis: max = the reading
QUEUE_DEPTH = Gauge("pricing_queue_depth",
                    "Jobs queued or running (stream entries + delayed retries + fair-scheduling lists)",
                    multiprocess_mode=_MODE)
QUEUE_OLDEST_AGE = Gauge("pricing_queue_oldest_age_seconds",
                         "Age of the oldest job queued (in the stream or a fair-scheduling list) or running "
                         "(0 when the queue is empty)", multiprocess_mode=_MODE)
QUEUE_IN_FLIGHT = Gauge("pricing_jobs_in_flight", "Jobs delivered to a worker and not finished",
                        multiprocess_mode=_MODE)
QUEUE_DELAYED = Gauge("pricing_jobs_delayed", "Jobs waiting for a retry back-off", multiprocess_mode=_MODE)
DEAD_LETTER_JOBS = Gauge("pricing_dead_letter_jobs", "Jobs in the dead-letter set (failed, not re-queued)",
                         multiprocess_mode=_MODE)
WORKERS_ALIVE = Gauge("pricing_workers_alive", "Workers with a heartbeat in the last 30 s",
                      multiprocess_mode=_MODE)
BACKLOG_BOUND = Gauge("pricing_backlog_bound", "Configured backlog above which submissions get 503",
                      multiprocess_mode=_MODE)
MODEL_STORE_BYTES = Gauge("pricing_model_store_bytes", "Bytes of models stored in Redis for the workers "
                          "(bounded by the gateway's quotes.model_store_bytes)", multiprocess_mode=_MODE)
PROBE_ERRORS = Counter("pricing_queue_probe_errors_total", "Failed reads of the queue state")

# --- worker side ----------------------------------------------------------------------------
JOBS = Counter("pricing_jobs_total", "Jobs a worker finished handling, by outcome "
               "(done, duplicate, retry, dead_letter, handed_back, skipped)", ["outcome"])
JOB_DURATION = Histogram("pricing_job_duration_seconds",
                         "From delivery to a worker to the recorded outcome (one legacy calculation)",
                         ["outcome"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300, 600,
                                               1200, 1800, 3600))
QUEUE_WAIT = Histogram("pricing_queue_wait_seconds",
                       "From submission to a worker's first start of the job, by the owner's tier "
                       "(internal for operators, other for a tier this worker was not told of)",
                       ["tier"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800,
                                          3600))
QUEUE_WAIT_OBJECTIVE = Gauge("pricing_queue_wait_objective_seconds",
                             "The tier's queue-wait objective (p95); PricingTierWaitAboveObjective compares",
                             ["tier"], multiprocess_mode="max")
WORKER_IN_FLIGHT = Gauge("pricing_worker_jobs_in_flight", "Jobs this worker is running now",
                         multiprocess_mode="livesum")
WORKER_CONCURRENCY = Gauge("pricing_worker_concurrency", "Jobs this worker may run at once",
                           multiprocess_mode="livesum")
RETRIES = Counter("pricing_retries_total", "Transient failures scheduled for another attempt")
BACKEND_UNAVAILABLE = Counter("pricing_backend_unavailable_total",
                              "Jobs handed back because the legacy was never reached (attempt not counted)")
DEAD_LETTERS = Counter("pricing_dead_letters_total", "Jobs moved to the dead-letter set", ["reason"])
RECLAIMED = Counter("pricing_reclaimed_total", "Entries taken over from a worker that stopped (XAUTOCLAIM)")
WEBHOOKS_IN_FLIGHT = Gauge("pricing_webhooks_in_flight",
                           "Webhook deliveries waiting for a partner endpoint now (one partner holds at "
                           "most --webhook-per-partner of them per worker)", multiprocess_mode="livesum")
WEBHOOKS = Counter("pricing_webhooks_total",
                   "Webhook delivery attempts by outcome (delivered, retry, gave_up, refused, no_secret)",
                   ["outcome"])


def watch_tiers(objectives: dict[str, float]) -> frozenset[str]:
    """Every configured tier's queue-wait series at 0 (and ``internal``, ``other``), its objective
    published; returns the tiers a job's ``tier`` may be labelled with (else ``other``)."""
    tiers = frozenset(objectives) | {"internal", "other"}
    for tier in tiers:
        QUEUE_WAIT.labels(tier=tier)
    for tier, seconds in objectives.items():
        QUEUE_WAIT_OBJECTIVE.labels(tier=tier).set(seconds)
    return tiers
