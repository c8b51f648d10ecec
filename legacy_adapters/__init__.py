"""Typed adapters around the legacy systems: the pricing queue, its workers and the price cache.

Public surface: the backend interface (:class:`PricingBackend` and its two implementations,
chosen by :func:`backend_from_spec`), the queue (:class:`PricingQueue`), submission
(:class:`QuoteSubmitter`) and the worker (:class:`QuoteWorker`). See docs/pricing.md.
"""

from legacy_adapters.backend import (
    PermanentPricingError,
    PriceResult,
    PricingBackend,
    PricingError,
    TransientPricingError,
)
from legacy_adapters.backend_spec import backend_from_spec
from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.fingerprint import fingerprint
from legacy_adapters.http_backend import HttpBackend
from legacy_adapters.job_view import job_json
from legacy_adapters.queue import PricingQueue
from legacy_adapters.redis_keys import QueueKeys
from legacy_adapters.submit import (
    IdempotencyConflict,
    PendingQuote,
    QuoteRequest,
    QuoteSubmitter,
    Submission,
    SubmitSettings,
)

__all__ = [
    "CallableBackend",
    "HttpBackend",
    "IdempotencyConflict",
    "PendingQuote",
    "PermanentPricingError",
    "PriceResult",
    "PricingBackend",
    "PricingError",
    "PricingQueue",
    "QueueKeys",
    "QuoteRequest",
    "QuoteSubmitter",
    "QuoteWorker",
    "Submission",
    "SubmitSettings",
    "TransientPricingError",
    "WorkerSettings",
    "backend_from_spec",
    "fingerprint",
    "job_json",
]
