"""Request collapsing (NGINX ``proxy_cache_lock``): one upstream request per key and process.

The first miss for a key becomes the *leader* and fetches; later misses for the same key wait
for its :class:`Fetched` (bounded by ``collapse_timeout``) instead of asking the MES again. A
result that cannot be shared (streamed, ``Set-Cookie``, ``private``) or a leader that went away
sends the waiters upstream themselves. Across instances there is no lock on misses: each
gateway process asks at most once per key (see docs/caching.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from multidict import CIMultiDict

from gateway.cache.entry import Entry


@dataclass(frozen=True, slots=True)
class Fetched:
    """A complete upstream answer that waiters may reuse; ``entry`` is set when it was stored."""

    status: int
    headers: CIMultiDict[str]
    body: bytes
    entry: Entry | None
    not_stored: str | None  # reason, for Cache-Status detail


class LeaderGone(Exception):
    """The leader ended without a shareable answer; the waiter asks upstream itself."""


def _consume(future: asyncio.Future[Fetched]) -> None:
    if not future.cancelled():
        future.exception()  # mark retrieved: nobody may be waiting


class Collapser:
    """Per-key futures of this process."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Fetched]] = {}

    def waiting_for(self, key: str) -> asyncio.Future[Fetched] | None:
        return self._inflight.get(key)

    @contextlib.asynccontextmanager
    async def lead(self, key: str) -> AsyncIterator[asyncio.Future[Fetched]]:
        """Hold the key while fetching; set the future's result, or waiters get ``LeaderGone``."""
        future: asyncio.Future[Fetched] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        self._inflight[key] = future
        try:
            yield future
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]
            if not future.done():
                future.set_exception(LeaderGone())

    def __len__(self) -> int:
        return len(self._inflight)


async def wait(future: asyncio.Future[Fetched], bound: float) -> Fetched:
    """The leader's answer; ``LeaderGone`` after ``bound`` s too (the waiter then fetches itself)."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), bound)
    except TimeoutError:
        raise LeaderGone() from None
