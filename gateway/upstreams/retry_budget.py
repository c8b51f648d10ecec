"""Retry budget (Envoy ``retry_budget``): cap concurrent retries to a share of traffic.

Retries may not exceed ``max(min_retry_concurrency, budget_percent% of active
requests)``, so an outage cannot multiply the load on the endpoints that are
left. A request holds one retry slot from its first retry until it finishes,
however many retries it then makes (``attempts`` already bounds those).
"""

from __future__ import annotations

from gateway.upstreams.config import RetryBudgetConfig

__all__ = ["RetryBudget"]


class RetryBudget:
    """Counts requests that are retrying and decides whether one more may."""

    def __init__(self, config: RetryBudgetConfig) -> None:
        self.config = config
        self.active_retries = 0
        self._fraction = config.budget_percent / 100.0

    def limit(self, active_requests: int) -> float:
        """How many requests may be retrying while ``active_requests`` are in flight."""
        return max(float(self.config.min_retry_concurrency), self._fraction * active_requests)

    def try_acquire(self, active_requests: int) -> bool:
        """Take a retry slot if the budget allows; the caller must ``release`` it."""
        if self.active_retries + 1 > self.limit(active_requests):
            return False
        self.active_retries += 1
        return True

    def release(self) -> None:
        """Give back a slot taken by ``try_acquire``."""
        self.active_retries -= 1
