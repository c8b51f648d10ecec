"""Shared counters in Redis: every window of a request checked and counted in one round trip.

Algorithm and key layout are those of ``limits``' ``SlidingWindowCounterRateLimiter`` on its
asyncio ``RedisStorage`` (``<prefix>:{<item key>}`` current, ``…/-1`` previous, windows anchored
at the first hit, previous count weighted by its remaining TTL), with the partner's hash tag in
the prefix: ``<key_prefix>:{p:<partner>}:{<item key>}`` (``p:`` keeps the tag non-empty; Redis
ignores ``{}``). Redis Cluster hashes the *first* ``{…}`` of a key, so every window of one
partner (its tier's and every route's) lives in one slot and the script below runs on Cluster
without ``CROSSSLOT``; ``limits`` reads or clears the same counters with
``key_prefix=<key_prefix>:{p:<partner>}`` (docs/redis.md).

What ``limits`` cannot do is check several windows atomically: its strategies take one item per
call, so three windows cost three round trips (six with ``test`` first) and either over-count
(hit all) or race (test, then hit). This script checks all windows and counts
the request in each only when every one allows it; it travels on ``RespPipe`` (see there why).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gateway.ratelimit.decision import Decision
from gateway.ratelimit.pipe import RespError, RespPipe, encode
from gateway.ratelimit.policy import Window

MULTI_WINDOW_SCRIPT = """
local n = #KEYS / 2
local weighted, counts = {}, {}
local allowed = 1
for i = 1, n do
  local pk, ck = KEYS[2*i-1], KEYS[2*i]
  local limit, expiry = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  local cur_ttl = redis.call('pttl', ck)
  if cur_ttl > 0 and cur_ttl < expiry then  -- the current window ended: it becomes the previous one
    redis.call('rename', ck, pk)
    redis.call('set', ck, 0, 'PX', cur_ttl + expiry)
    cur_ttl = cur_ttl + expiry
  end
  local prev_count = tonumber(redis.call('get', pk)) or 0
  local prev_ttl = 0
  if prev_count > 0 then prev_ttl = math.max(0, redis.call('pttl', pk)) end
  local cur_count = tonumber(redis.call('get', ck)) or 0
  weighted[i] = math.floor(prev_count * prev_ttl / expiry) + cur_count
  counts[i] = {prev_count, prev_ttl, cur_count, math.max(0, cur_ttl)}
  if weighted[i] + 1 > limit then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local limit, expiry = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  local c = counts[i]
  if allowed == 1 then
    if redis.call('exists', KEYS[2*i]) == 1 then
      redis.call('incrby', KEYS[2*i], 1)
    else
      redis.call('set', KEYS[2*i], 1, 'PX', expiry * 2)
      c[4] = expiry * 2
    end
    weighted[i] = weighted[i] + 1
    c[3] = c[3] + 1
  end
  local reset = expiry
  if c[1] > 0 then reset = math.min(reset, c[2] % (expiry / c[1])) end
  if c[3] > 0 then reset = math.min(reset, c[4] % expiry) end
  out[2*i] = limit - weighted[i]
  out[2*i+1] = math.floor(reset)
end
return out
"""


def counter_keys(key_prefix: str, window: Window, identifiers: Sequence[str]) -> tuple[str, str]:
    """(previous, current) keys, as ``limits.aio.storage.RedisStorage`` names them under the
    prefix ``<key_prefix>:{p:<partner>}``; the partner is the last identifier (``("partner", id)``,
    ``("route", name, id)``), so all windows of one request share the partner's hash slot."""
    item_key = window.item.key_for(*identifiers)
    tagged = f"{key_prefix}:{{p:{identifiers[-1]}}}"
    return f"{tagged}:{{{item_key}}}/-1", f"{tagged}:{{{item_key}}}"


class SharedWindows:
    """Runs the multi-window script with EVALSHA on a ``RespPipe`` (SCRIPT LOAD on NOSCRIPT)."""

    def __init__(self, pipe: RespPipe, key_prefix: str) -> None:
        self.pipe = pipe
        self.key_prefix = key_prefix
        self._sha = hashlib.sha1(MULTI_WINDOW_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis' id)
        self._commands: dict[tuple[tuple[Window, ...], tuple[tuple[str, ...], ...]], bytes] = {}

    def _command(self, windows: tuple[Window, ...], ids: tuple[tuple[str, ...], ...]) -> bytes:
        """The EVALSHA command of a plan, encoded once (keys and limits never change)."""
        cache_key = (windows, ids)
        found = self._commands.get(cache_key)
        if found is None:
            keys: list[str] = []
            args: list[int] = []
            for window, identifiers in zip(windows, ids, strict=True):
                keys.extend(counter_keys(self.key_prefix, window, identifiers))
                args.extend((window.amount, window.seconds * 1000))
            found = encode("EVALSHA", self._sha, len(keys), *keys, *args)
            if len(self._commands) < 50_000:  # partners x routes: bounded by the key store
                self._commands[cache_key] = found
        return found

    async def hit(self, windows: tuple[Window, ...], ids: tuple[tuple[str, ...], ...]) -> Decision:
        """Check every window; count the request in all of them only if all allow it."""
        command = self._command(windows, ids)
        try:
            out = await self.pipe.call(command)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.pipe.call(encode("SCRIPT", "LOAD", MULTI_WINDOW_SCRIPT))  # Redis restarted
            out = await self.pipe.call(command)
        return Decision(bool(out[0]), windows, tuple(out[1::2]), tuple(ms / 1000 for ms in out[2::2]))
