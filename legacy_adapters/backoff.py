"""Exponential back-off with full jitter (AWS architecture blog), shared by retries and webhooks."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Delay before attempt ``attempt + 1``: ``min(cap, base * 2**(attempt-1))``, jittered to 50-100 %."""
    delay: float = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.5, 1.0) if jitter else delay
