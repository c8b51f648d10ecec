"""Which version counters an order change bumps, and bumping them (with metrics).

A change of order ``id`` from ``old`` to ``new`` bumps ``v:order:<id>``, ``v:lists`` (unfiltered
lists show every order), ``v:status:<new>`` and ``v:status:<old>``. When the old status is
unknown (``CANCELLED`` is reachable from five statuses) every status counter is bumped.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from contracts.lifecycle import STATUS_NAMES as STATUSES
from contracts.lifecycle import predecessor
from gateway import metrics
from gateway.cache.backends import CacheBackend, CacheBackendError
from gateway.cache.keys import VersionKeys

log = logging.getLogger("gateway.cache")

REASONS = ("event", "write", "subscribe", "purge_key", "purge_route", "purge_order", "purge_all")


def change_versions(keys: VersionKeys, order_id: int, old: str | None, new: str | None, *,
                    created: bool = False) -> list[str]:
    """Counters to bump for one order change (``created``: a new order, nothing before it)."""
    bumped = [keys.order(order_id), keys.lists]
    statuses = {s for s in (old, new) if s in STATUSES}
    if (old is None and not created) or new not in STATUSES:
        statuses = set(STATUSES)  # cannot know which filtered lists held the order before
    bumped += [keys.status(s) for s in sorted(statuses)]
    return bumped


def change_of_response(body: bytes, *, created: bool) -> tuple[int, str | None, str | None] | None:
    """``(order_id, old, new)`` from the order the MES answered a write with (None: not an order)."""
    try:
        order: Any = orjson.loads(body)
        order_id, new = int(order["id"]), str(order["status"]).upper()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return order_id, None if created else predecessor(new), new


class Invalidator:
    """Bumps version counters on the backend; every bump is counted by reason."""

    def __init__(self, backend: CacheBackend, keys: VersionKeys) -> None:
        self.backend = backend
        self.keys = keys
        for reason in REASONS:  # every reason's series exists at 0 from start-up
            metrics.CACHE_INVALIDATIONS.labels(reason=reason)

    async def bump(self, version_keys: list[str], reason: str) -> None:
        """Raises CacheBackendError (counted) when the store is unreachable."""
        try:
            await self.backend.bump(version_keys)
        except CacheBackendError:
            metrics.CACHE_BACKEND_ERRORS.labels(operation="bump").inc()
            raise
        self.count(reason)

    @staticmethod
    def count(reason: str) -> None:
        metrics.CACHE_INVALIDATIONS.labels(reason=reason).inc()

    async def order_changed(self, order_id: int, old: str | None, new: str | None, *, reason: str,
                            created: bool = False) -> None:
        await self.bump(change_versions(self.keys, order_id, old, new, created=created), reason)

    async def everything(self, reason: str) -> None:
        await self.bump([self.keys.all], reason)

    async def route(self, name: str) -> None:
        await self.bump([self.keys.route(name)], "purge_route")
