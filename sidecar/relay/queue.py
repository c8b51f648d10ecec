"""The relay's view of the CRM queue: one Redis stream, one consumer group, one consumer name.

Entries are read new (``>``), re-read from this consumer's own pending list (``0``: failed
deliveries, and everything left by a previous run under the same name), or claimed from other
consumers that went quiet (``XAUTOCLAIM``). An entry leaves the pending list only through
:meth:`RelayQueue.ack` (after the MES confirmed it) or :meth:`RelayQueue.dead_letter` (``XADD`` to
the dead-letter stream and ``XACK`` in one ``MULTI``, so a poison entry is never lost nor looped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.exceptions

from contracts.crm_queue import dead_letter_fields
from contracts.crm_status import STATUS_STREAM_MAXLEN, DeliveryStatus
from sharedstate.redis_spec import AnyRedis
from sidecar.relay.config import RelayConfig

#: ``(entry id, fields)``; fields are None for an entry deleted from the stream while pending.
Entry = tuple[str, Mapping[bytes, bytes] | None]


@dataclass(frozen=True, slots=True)
class QueueLag:
    """How far behind the relay's group is (``XLEN``, ``XINFO GROUPS``, ``XPENDING``, ``TIME``)."""

    length: int
    lag: float  # entries not yet delivered to the group; NaN when Redis cannot tell (after XDEL)
    pending: int  # delivered to a consumer of the group, not yet acknowledged
    oldest_pending_age: float  # seconds since the CRM queued the oldest pending entry (0: none)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[Entry]:
    return [(_text(entry_id), fields or None) for entry_id, fields in raw or ()]


def _read_reply(reply: Any) -> list[Entry]:
    """XREADGROUP's one-stream answer: ``[[stream, entries]]`` (RESP2) or ``{stream: entries}`` (RESP3)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return _entries(next(iter(reply.values()))[0])  # RESP3: {stream: [entries]}
    return _entries(reply[0][1])


class RelayQueue:
    """Stream operations of one relay consumer (a ``redis.asyncio`` client without decoding)."""

    def __init__(self, client: AnyRedis, config: RelayConfig) -> None:
        self._redis = client
        self.config = config

    async def ensure_group(self) -> None:
        """Create the group (at ``group_start_id``, creating the stream) unless it exists."""
        try:
            await self._redis.xgroup_create(self.config.stream, self.config.group,
                                            id=self.config.group_start_id, mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, count: int, block_ms: int) -> list[Entry]:
        """Up to ``count`` entries never delivered to the group; waits up to ``block_ms``."""
        reply: Any = await self._redis.xreadgroup(self.config.group, self.config.consumer,
                                                  {self.config.stream: ">"}, count=count, block=block_ms)
        return _read_reply(reply)

    async def read_own_pending(self, after: str, count: int) -> list[Entry]:
        """Up to ``count`` of this consumer's pending entries with ids above ``after`` (``"0"``: all)."""
        reply: Any = await self._redis.xreadgroup(self.config.group, self.config.consumer,
                                                  {self.config.stream: after}, count=count)
        return _read_reply(reply)

    async def claim_stale(self, cursor: str, count: int) -> tuple[str, list[Entry]]:
        """Claim entries idle for ``reclaim_idle`` from any consumer; returns the next cursor."""
        reply: Any = await self._redis.xautoclaim(
            self.config.stream, self.config.group, self.config.consumer,
            int(self.config.reclaim_idle * 1000), start_id=cursor, count=count)
        return _text(reply[0]), _entries(reply[1])

    async def ack(self, entry_id: str) -> None:
        """Remove one entry from the pending list (the MES has the order)."""
        await self._redis.xack(self.config.stream, self.config.group, entry_id)

    async def ack_delivered(self, entry_id: str, status: DeliveryStatus) -> None:
        """Record the CRM order as delivered (``XADD`` to the status stream) and acknowledge, atomically.

        Either both happen or neither: a failure leaves the entry pending, it is delivered again
        (the MES answers 200 with the same order) and the status is recorded then.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.config.status_stream, status.to_fields(),  # type: ignore[arg-type]
                      maxlen=STATUS_STREAM_MAXLEN, approximate=True)
            pipe.xack(self.config.stream, self.config.group, entry_id)
            await pipe.execute()

    async def dead_letter(self, entry_id: str, fields: Mapping[bytes, bytes], reason: str) -> None:
        """Copy the entry to the dead-letter stream with ``dl_*`` fields and acknowledge it, atomically."""
        dead = dead_letter_fields(fields, reason=reason, entry_id=entry_id,
                                  consumer=f"{self.config.group}/{self.config.consumer}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.config.dead_letter_stream, dead)
            pipe.xack(self.config.stream, self.config.group, entry_id)
            await pipe.execute()

    async def lag(self) -> QueueLag:
        """One consistent-enough snapshot of the queue (four commands in one round trip).

        A stream that does not exist yet (no order since Redis started empty) or a group not yet
        created are normal states, not errors: nothing waits (lag 0), or, for a missing group,
        everything the group will replay from ``group_start_id`` 0 waits.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.config.stream)
            pipe.xinfo_groups(self.config.stream)
            pipe.xpending(self.config.stream, self.config.group)
            pipe.execute_command("TIME")  # by name: redis-py's cluster pipeline refuses .time()
            length, groups, pending, now = await pipe.execute(raise_on_error=False)
        errors = [r for r in (length, groups, pending, now) if isinstance(r, BaseException)]
        for error in errors:
            if not _no_such_stream_or_group(error):
                raise error
        if errors:  # no stream (XINFO: "no such key") or no group yet (XPENDING: NOGROUP)
            waiting = float(length) if self.config.group_start_id == "0" else 0.0
            return QueueLag(length=int(length), lag=waiting, pending=0, oldest_pending_age=0.0)
        lag = float("nan")
        for group in groups:
            info = {_text(k): v for k, v in group.items()}
            if _text(info.get("name")) == self.config.group and info.get("lag") is not None:
                lag = float(info["lag"])
        count = int(pending.get("pending") or 0)
        age = 0.0
        if count and pending.get("min"):
            queued_ms = int(_text(pending["min"]).split("-", 1)[0])
            age = max(0.0, now[0] + now[1] / 1e6 - queued_ms / 1000)
        return QueueLag(length=int(length), lag=lag, pending=count, oldest_pending_age=age)


def _no_such_stream_or_group(error: BaseException) -> bool:
    """Redis's answer for a stream that does not exist (yet) or a group not created (yet)."""
    text = str(error)
    return isinstance(error, redis.exceptions.ResponseError) and (
        "no such key" in text.lower() or text.startswith("NOGROUP"))
