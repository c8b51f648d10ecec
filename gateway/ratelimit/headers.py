"""``RateLimit-Policy`` / ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers-11).

Both are Structured Field Lists (RFC 9651) of String items with parameters::

    RateLimit-Policy: "burst";q=50;w=1, "rate";q=1000;w=60, "quota";q=100000;w=86400
    RateLimit: "burst";r=49;t=1, "rate";r=998;t=60, "quota";r=99990;t=86400

``q`` quota, ``w`` window (s), ``r`` remaining quota, ``t`` effective window (s, >= 0).
Window names are validated at config time as lowercase tokens, so no escaping is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from gateway.ratelimit.policy import Window


@lru_cache(maxsize=1024)
def policy_field(windows: tuple[Window, ...]) -> str:
    """The static ``RateLimit-Policy`` value (cached: it only changes with the config)."""
    return ", ".join(f'"{w.name}";q={w.amount};w={w.seconds}' for w in windows)


def item_prefixes(windows: Sequence[Window]) -> tuple[str, ...]:
    """The static start of each window's ``RateLimit`` item (computed once per plan)."""
    return tuple(f'"{w.name}";r=' for w in windows)


def ratelimit_items(prefixes: Sequence[str], remaining: Sequence[int], reset_in: Sequence[float]) -> str:
    """``ratelimit_field`` from precomputed ``item_prefixes`` (the hot path)."""
    return ", ".join([f"{prefix}{r if r > 0 else 0};t={math.ceil(t) if t > 0 else 0}"
                      for prefix, r, t in zip(prefixes, remaining, reset_in, strict=True)])


def ratelimit_field(windows: Sequence[Window], remaining: Sequence[int], reset_in: Sequence[float]) -> str:
    """The per-response ``RateLimit`` value: remaining quota and seconds until it grows."""
    return ratelimit_items(item_prefixes(windows), remaining, reset_in)


def retry_after(violated_reset_in: Sequence[float]) -> int:
    """``Retry-After`` seconds: not before the end of the longest violated effective window."""
    return max(1, math.ceil(max(violated_reset_in, default=1.0)))
