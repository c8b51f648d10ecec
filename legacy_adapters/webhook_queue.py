"""Per-owner webhook queues: one partner's slow or hanging endpoint delays only its own webhooks.

The job scripts (``scripts.py``) drop a finished job's id into the inbox ZSET ``:webhooks``.
Claiming moves the inbox into one due-time ZSET per owner (``:webhooks:owner:{owner}``) and
keeps ``:webhooks:owners`` (owner → its earliest due time); a worker then leases the earliest
due webhook of an owner that is *not busy in that worker* (the owners at their concurrency bound
are passed in). So a partner whose endpoint hangs holds at most ``per_partner`` delivery slots
per worker, and every other partner's webhooks keep flowing through the rest. Each step is one
Lua script; a lease (due time pushed ``lease_ms`` ahead) makes a crash mid-delivery a delay.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from legacy_adapters.queue import PricingQueue, now_ms

_COMMON = r"""
local P = ARGV[1]
local owners_key = P .. ':webhooks:owners'
local function oq(o) return P .. ':webhooks:owner:' .. o end
local function refresh(o)   -- an owner's score is its earliest due time; no webhook left: gone
  local first = redis.call('ZRANGE', oq(o), 0, 0, 'WITHSCORES')
  if #first == 0 then redis.call('ZREM', owners_key, o) else redis.call('ZADD', owners_key, first[2], o) end
end
"""

#: ARGV: prefix, now, lease_ms, inbox batch, busy owners… → {job_id, owner} or nil.
CLAIM = _COMMON + r"""
local now, lease, batch = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local inbox = redis.call('ZRANGE', P .. ':webhooks', 0, batch - 1, 'WITHSCORES')
for i = 1, #inbox, 2 do
  local id, due = inbox[i], inbox[i + 1]
  redis.call('ZREM', P .. ':webhooks', id)
  local o = redis.call('HGET', P .. ':job:' .. id, 'owner')
  if o then   -- an expired job has nothing to deliver
    redis.call('ZADD', oq(o), due, id)
    redis.call('ZADD', owners_key, 'LT', due, o)
  end
end
local busy = {}
for i = 5, #ARGV do busy[ARGV[i]] = true end
-- at most #busy of the first #busy + 1 due owners are busy: a free one is found if any is due
for _, o in ipairs(redis.call('ZRANGEBYSCORE', owners_key, '-inf', now, 'LIMIT', 0, #ARGV - 3)) do
  if not busy[o] then
    local due = redis.call('ZRANGEBYSCORE', oq(o), '-inf', now, 'LIMIT', 0, 1)
    if #due == 1 then
      redis.call('ZADD', oq(o), now + lease, due[1])
      refresh(o)
      return {due[1], o}
    end
    refresh(o)
  end
end
return false
"""

#: ARGV: prefix, owner, job_id, due_ms ('' = delivered or given up: forget it).
SETTLE = _COMMON + r"""
local o, id, due = ARGV[2], ARGV[3], ARGV[4]
if due == '' then redis.call('ZREM', oq(o), id) else redis.call('ZADD', oq(o), tonumber(due), id) end
redis.call('ZREM', P .. ':webhooks', id)   -- delivered without a claim (operator, tests)
refresh(o)
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WebhookQueue:
    """Claim/settle webhooks per owner on the pricing queue's Redis."""

    def __init__(self, queue: PricingQueue, *, inbox_batch: int = 100) -> None:
        self.queue = queue
        self.inbox_batch = inbox_batch
        self._claim = queue.redis.register_script(CLAIM)
        self._settle = queue.redis.register_script(SETTLE)

    async def claim(self, lease_ms: int, busy: Collection[str] = ()) -> tuple[str, str] | None:
        """Lease the next due webhook of an owner not in ``busy``: (job id, owner), or None."""
        answer = await self._claim(keys=[], args=[self.queue.keys.prefix, now_ms(), lease_ms,
                                                  self.inbox_batch, *busy])
        return (_text(answer[0]), _text(answer[1])) if answer else None

    async def forget(self, job_id: str, owner: str) -> None:
        """Delivered or given up."""
        await self._settle(keys=[], args=[self.queue.keys.prefix, owner, job_id, ""])

    async def retry_at(self, job_id: str, owner: str, due_ms: int) -> None:
        """Try again at ``due_ms``."""
        await self._settle(keys=[], args=[self.queue.keys.prefix, owner, job_id, due_ms])
