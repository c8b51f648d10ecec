"""Per-partner daily usage counts in Redis: the key layout and the one script every writer runs.

The gateway (requests, orders, quotes, rate-limited and shed answers, dedup-avoided models) and
the pricing workers (priced models) write the same counters, so both use this module
(docs/redis.md, "Usage accounting"; docs/partner-api.md, "Usage")::

    <prefix>:{<partner>}:<YYYY-MM-DD>     HASH  kind → count (one day, UTC), EXPIRE retention
    <prefix>:{<partner>}:seq:<writer>     STRING the writer's last applied batch (exactly once)
    <prefix>:{<partner>}:job:<job id>     STRING a priced job already counted (exactly once)
    <prefix>:{index}:<YYYY-MM-DD>         SET   partners with usage that day (for the export)

Every key of one write carries the partner's hash tag, so one script adds a whole batch for a
partner atomically on one server, Sentinel or Cluster. A write is idempotent: either a batch
sequence number that must grow per writer (``seq``: a batch retried after a lost reply is not
added twice) or a one-off token (``once``: a redelivered pricing job is not counted twice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from sharedstate.redis_spec import AnyRedis

#: What is counted (a fixed set: the export's columns, the metrics' ``kind`` label).
KINDS: tuple[str, ...] = ("requests", "orders", "quotes", "models_priced", "models_deduplicated",
                          "rate_limited", "shed")
DEFAULT_PREFIX = "mes-edge:usage"
DAY = 86400
#: How long a writer's sequence or a job token is remembered: far longer than any retry of it.
MARKER_TTL = 7 * DAY

ADD_SCRIPT = """
local mode, token = ARGV[1], ARGV[2]
local marker_ttl, retention = tonumber(ARGV[3]), tonumber(ARGV[4])
if mode == 'seq' then
  local last = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tonumber(token) <= last then return 0 end
  redis.call('SET', KEYS[1], token, 'EX', marker_ttl)
elseif not redis.call('SET', KEYS[1], token, 'NX', 'EX', marker_ttl) then
  return 0
end
for i = 2, #KEYS do
  for kind, n in string.gmatch(ARGV[i + 3], '([%w_]+)=(%d+)') do
    redis.call('HINCRBY', KEYS[i], kind, tonumber(n))
  end
  redis.call('EXPIRE', KEYS[i], retention)
end
return 1
"""

Mode = Literal["seq", "once"]
#: One partner's counts of one write: day (``YYYY-MM-DD``) → kind → count.
DayCounts = Mapping[str, Mapping[str, int]]


def day_of(timestamp: float) -> str:
    """The UTC day of a Unix time, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def days_between(first: dt.date, last: dt.date) -> list[str]:
    """Every day from ``first`` to ``last`` included, as keys."""
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


class UsageKeys:
    """The key layout under one prefix (no braces in it: the partner's id is the hash tag)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the usage key prefix must not contain braces (the partner is the hash tag)")
        self.prefix = prefix

    def day(self, partner: str, day: str) -> str:
        return f"{self.prefix}:{{{partner}}}:{day}"

    def seq(self, partner: str, writer: str) -> str:
        return f"{self.prefix}:{{{partner}}}:seq:{writer}"

    def job(self, partner: str, job_id: str) -> str:
        return f"{self.prefix}:{{{partner}}}:job:{job_id}"

    def index(self, day: str) -> str:
        return f"{self.prefix}:{{index}}:{day}"


class UsageCounts:
    """Adds and reads counts through a redis-py client (single, Sentinel or Cluster)."""

    def __init__(self, client: AnyRedis, *, prefix: str = DEFAULT_PREFIX, retention_days: int = 400) -> None:
        self.client = client
        self.keys = UsageKeys(prefix)
        self.retention = retention_days * DAY
        self._script = client.register_script(ADD_SCRIPT)

    async def add(self, partner: str, counts: DayCounts, *, mode: Mode, token: str) -> bool:
        """Add ``counts`` for ``partner`` once; False if this ``token`` was applied before.

        ``seq`` mode: ``token`` is ``<writer>:<n>`` with n growing per writer (batches in order)."""
        days = [d for d, kinds in counts.items() if any(kinds.values())]
        if not days:
            return True
        if mode == "seq":
            writer, _, number = token.rpartition(":")
            marker, value = self.keys.seq(partner, writer), number
        else:
            marker, value = self.keys.job(partner, token), "1"
        encoded = [",".join(f"{k}={n}" for k, n in counts[d].items() if n) for d in days]
        applied = await self._script(keys=[marker, *(self.keys.day(partner, d) for d in days)],
                                     args=[mode, value, MARKER_TTL, self.retention, *encoded])
        # the index is a set (adding twice changes nothing): written after, in its own slot
        async with self.client.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.sadd(self.keys.index(d), partner)
                pipe.expire(self.keys.index(d), self.retention)
            await pipe.execute()
        return bool(applied)

    async def read(self, partner: str, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """Counts of one partner per day (days without usage are absent)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.hgetall(self.keys.day(partner, d))
            rows = await pipe.execute()
        return {d: _ints(row) for d, row in zip(days, rows, strict=True) if row}

    async def partners(self, days: Iterable[str]) -> dict[str, list[str]]:
        """Which partners have usage on each of ``days``."""
        days = list(days)
        async with self.client.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.smembers(self.keys.index(d))
            rows = await pipe.execute()
        return {d: sorted(_text(p) for p in row) for d, row in zip(days, rows, strict=True)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ints(row: Mapping[bytes | str, bytes | str]) -> dict[str, int]:
    return {_text(k): int(v) for k, v in row.items()}
