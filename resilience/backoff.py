"""Capped exponential backoff with *full jitter*: the one retry and reconnect delay of every process.

The n-th wait (n = 1 for the first retry) is drawn uniformly from ``[0, ceiling(n)]``::

    ceiling(n) = min(cap, base * 2 ** (n - 1))
    delay(n)   = uniform(0, ceiling(n))

This is "Full Jitter" of Marc Brooker's *Exponential Backoff And Jitter* (AWS Architecture Blog,
2015): of the policies compared there it spreads competing clients best and finishes their work
with the fewest calls. It is *not* "equal jitter" (``ceiling / 2 + uniform(0, ceiling / 2)``,
i.e. 50-100 % of the ceiling), which ``legacy_adapters`` once did under this name. Many gateway
workers, pricing workers or sidecars that lost the same Redis or MES at the same moment thus
come back at different moments.

Used by the gateway's cluster retries (``clusters.<name>.retry.backoff_base``/``backoff_max``),
its cache-invalidation feed reconnects, the pricing workers' retries and webhook redeliveries,
and the sidecar's event publisher and CRM relay (Redis outages). Pure standard library.
"""

from __future__ import annotations

import random

__all__ = ["Backoff", "backoff_ceiling", "backoff_delay"]

#: Doubling stops here (2**62 x any sane base is past every cap); keeps the float finite.
_MAX_DOUBLINGS = 62


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The longest wait before retry ``attempt`` (1 = the first): ``min(cap, base * 2**(attempt-1))``."""
    return min(cap, base * 2.0 ** min(max(0, attempt - 1), _MAX_DOUBLINGS))


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """The wait before retry ``attempt`` (1 = the first): full jitter, uniform in ``[0, ceiling]``.

    ``rng``: the random source (tests pass a seeded ``random.Random``); the module's by default.
    """
    ceiling = backoff_ceiling(attempt, base=base, cap=cap)
    return (rng or random).uniform(0.0, ceiling)


class Backoff:
    """The waits of one reconnect loop: ``next_delay()`` after each failure, ``reset()`` after a success.

    ::

        backoff = Backoff(base=0.1, cap=2.0)
        while True:
            try:
                await session()          # returns or raises when the connection is lost
            except ConnectionError:
                ...
            else:
                backoff.reset()
            await asyncio.sleep(backoff.next_delay())
    """

    __slots__ = ("_rng", "base", "cap", "failures")

    def __init__(self, *, base: float, cap: float, rng: random.Random | None = None) -> None:
        if not 0.0 <= base <= cap:
            raise ValueError("need 0 <= base <= cap")
        self.base = base
        self.cap = cap
        #: Failures since the last ``reset()``.
        self.failures = 0
        self._rng = rng

    def next_delay(self) -> float:
        """Count one more failure; the full-jitter wait before the next try."""
        self.failures += 1
        return backoff_delay(self.failures, base=self.base, cap=self.cap, rng=self._rng)

    def reset(self) -> None:
        """A try succeeded: the next failure waits at most ``base`` again."""
        self.failures = 0

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap}, failures={self.failures})"
