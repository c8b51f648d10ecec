"""The Lua scripts that make every queue transition atomic (and completion idempotent), webhooks too.

All scripts build their keys from the prefix in ``ARGV[1]``, exactly like :class:`QueueKeys`.
That is fine on one Redis (or a primary with replicas); Redis Cluster would need hash tags.
"""

from __future__ import annotations

_COMMON = r"""
local P = ARGV[1]
local function jk(id) return P .. ':job:' .. id end
local function to_stream(id)
  local tp = redis.call('HGET', jk(id), 'traceparent') or ''
  local ts = redis.call('HGET', jk(id), 'tracestate') or ''
  return redis.call('XADD', P .. ':stream', '*', 'v', '1', 'job_id', id, 'traceparent', tp, 'tracestate', ts)
end
-- fair scheduling (docs/pricing.md, "Fair scheduling across partners"): a job submitted with
-- fair = 1 waits in its owner's list :fair:q:{owner}; owners with waiting jobs are in :fair:active
-- (ZSET owner -> place in the round), their deficits in :fair:deficit, their quantum (tier weight)
-- in :fair:weight; :fair:waiting counts every listed job (the backlog bound sees it). 'internal'
-- (operators) has its own list, always served first. fair_dispatch moves jobs into the stream by
-- deficit round robin: workers read the stream as ever (consumer group, XAUTOCLAIM, dead letters).
local function fq(o) return P .. ':fair:q:' .. o end
local function clock_ms()   -- Redis's own clock (the scripts replicate their effects, not themselves)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fair_push(id)
  local o = redis.call('HGET', jk(id), 'owner') or 'internal'
  redis.call('RPUSH', fq(o), id)
  redis.call('HSET', jk(id), 'listed_at', clock_ms())   -- each list is oldest first: its head's age counts
  redis.call('INCR', P .. ':fair:waiting')
  if o ~= 'internal' and not redis.call('ZSCORE', P .. ':fair:active', o) then
    -- a newcomer goes first (like FQ-CoDel's new flows): one quantum before the running round
    local head = redis.call('ZRANGE', P .. ':fair:active', 0, 0, 'WITHSCORES')
    redis.call('ZADD', P .. ':fair:active', (#head == 0) and 0 or (tonumber(head[2]) - 1), o)
    redis.call('HSET', P .. ':fair:weight', o, redis.call('HGET', jk(id), 'weight') or '1')
  end
end
local function fair_pop(o)   -- the owner's next job still queued (others were ended meanwhile)
  while true do
    local id = redis.call('LPOP', fq(o))
    if not id then return nil end
    redis.call('DECR', P .. ':fair:waiting')
    if redis.call('HGET', jk(id), 'status') == 'queued' then return id end
  end
end
local function undelivered()   -- stream entries no worker has read yet
  local ok, p = pcall(redis.call, 'XPENDING', P .. ':stream', ARGV[2])
  return redis.call('XLEN', P .. ':stream') - ((ok and p[1]) or 0)
end
local function fair_dispatch(window)   -- top the stream up to `window` unread entries; returns moved
  local n, moved = window - undelivered(), 0
  while moved < n do
    local id = fair_pop('internal')
    if not id then break end
    to_stream(id); moved = moved + 1
  end
  local active, deficit, weight = P .. ':fair:active', P .. ':fair:deficit', P .. ':fair:weight'
  while moved < n do
    local head = redis.call('ZRANGE', active, 0, 0)
    if #head == 0 then break end
    local o = head[1]
    local d = tonumber(redis.call('HGET', deficit, o) or '0')
    if d <= 0 then d = d + tonumber(redis.call('HGET', weight, o) or '1') end   -- its turn: a quantum
    local empty = false
    while d > 0 and moved < n do
      local id = fair_pop(o)
      if not id then empty = true; break end
      to_stream(id); moved = moved + 1; d = d - 1
    end
    if empty or redis.call('LLEN', fq(o)) == 0 then   -- nothing waiting: it leaves (bounded memory)
      redis.call('ZREM', active, o); redis.call('HDEL', deficit, o)
      redis.call('HDEL', weight, o)
    elseif d <= 0 then   -- its turn is over: to the back of the round
      local last = redis.call('ZRANGE', active, -1, -1, 'WITHSCORES')
      redis.call('ZADD', active, tonumber(last[2]) + 1, o); redis.call('HDEL', deficit, o)
    else
      redis.call('HSET', deficit, o, d)   -- the window is full mid-turn: it goes on next time
    end
  end
  return moved
end
-- workers blocked on an empty stream right now: :fair:idle ZSET worker -> until when (ms, Redis TIME)
-- its blocking read lasts; CLAIM registers a worker that found nothing, atomically with finding nothing
local function idle_workers()
  redis.call('ZREMRANGEBYSCORE', P .. ':fair:idle', '-inf', clock_ms())
  return redis.call('ZCARD', P .. ':fair:idle')
end
-- a listed job is moved into the stream only for a worker that waits for it (late binding): an entry
-- nobody reads yet would be one more a newcomer's quote waits behind
local function wake(cap)
  local n = idle_workers()
  if cap and cap < n then n = cap end
  if n > 0 then fair_dispatch(n) end
end
local function enqueue(id, cap)
  if redis.call('HGET', jk(id), 'fair') == '1' then fair_push(id); return wake(cap) end
  return to_stream(id)
end
local function webhook(id, now)
  if (redis.call('HGET', jk(id), 'callback_url') or '') ~= '' then
    redis.call('ZADD', P .. ':webhooks', now, id)
  end
end
local function live_leader(fp)
  local leader = redis.call('GET', P .. ':inflight:' .. fp)
  if not leader then return nil end
  local st = redis.call('HGET', jk(leader), 'status')
  if st == 'queued' or st == 'running' then return leader end
  redis.call('DEL', P .. ':inflight:' .. fp)   -- stale marker (job ended or expired)
  return nil
end
-- stored models: :model:{sha} bytes, :models ZSET sha → expiry ms, :models:size HASH sha → bytes,
-- :models:refs HASH sha → queued jobs using it, :models:bytes total (the model store budget)
local function model_release(sha)
  local size = redis.call('HGET', P .. ':models:size', sha)
  if size then redis.call('DECRBY', P .. ':models:bytes', size) end
  redis.call('HDEL', P .. ':models:size', sha)
  redis.call('HDEL', P .. ':models:refs', sha)
  redis.call('ZREM', P .. ':models', sha)
  redis.call('DEL', P .. ':model:' .. sha)
end
local function model_reap(now)
  for _, sha in ipairs(redis.call('ZRANGEBYSCORE', P .. ':models', '-inf', now, 'LIMIT', 0, 100)) do
    model_release(sha)
  end
end
local function model_unref(sha, free)   -- a job that needed the model ended
  if not sha then return end
  local left = redis.call('HINCRBY', P .. ':models:refs', sha, -1)
  if left <= 0 then
    redis.call('HDEL', P .. ':models:refs', sha)
    if free then model_release(sha) end
  end
end
local function finish_acked(entry)
  if entry ~= '' then
    redis.call('XACK', P .. ':stream', ARGV[2], entry)
    redis.call('XDEL', P .. ':stream', entry)
  end
end
"""

#: Submit a job (see :mod:`legacy_adapters.submit`). ARGV: prefix, group, job_id, fp ('' = only try the
#: exact-bytes index), bound, now_ms, idem_key ('' = none), idem_value, idem_ttl, job_ttl,
#: inflight_ttl, model_ttl, model store budget (bytes), model bytes, dispatch cap (fair jobs: at most
#: this many unread entries, and only for workers waiting on an empty stream), then field/value pairs.
#: Returns {outcome, detail}: replay|cached|attached|queued|full|store_full|miss.
SUBMIT = _COMMON + r"""
local id, fp, bound, now = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local idem_key, idem_value = ARGV[7], ARGV[8]
local job_ttl, inflight_ttl, model_ttl = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local store_budget, model = tonumber(ARGV[13]), ARGV[14]
if idem_key ~= '' then
  local existing = redis.call('GET', idem_key)
  if existing then return {'replay', existing} end
end
local fields = {}
for i = 16, #ARGV do fields[#fields + 1] = ARGV[i] end
local job = {}
for i = 1, #fields, 2 do job[fields[i]] = fields[i + 1] end
-- dedup is scoped per owner (fp carries the owner too): no partner learns what another quoted
local exact_key = P .. ':exact:' .. job['owner'] .. ':' .. job['rules_version'] .. ':' .. job['material']
  .. ':' .. job['sha256']
local from_index = false
if fp == '' then
  fp = redis.call('GET', exact_key)
  if not fp then return {'miss', ''} end
  from_index = true
end
local function create(extra)
  redis.call('HSET', jk(id), unpack(fields))
  redis.call('HSET', jk(id), 'fingerprint', fp, unpack(extra))
  redis.call('EXPIRE', jk(id), job_ttl)
  if idem_key ~= '' then redis.call('SET', idem_key, idem_value, 'EX', ARGV[9]) end
end
local price_key = P .. ':price:' .. fp
local cached = redis.call('HMGET', price_key, 'result', 'sha256')
if cached[1] then
  local kind = (cached[2] == job['sha256']) and 'exact' or 'geometric'
  create({'status', 'done', 'result', cached[1], 'cached', kind, 'finished_at', now, 'completions', '1'})
  local left = redis.call('TTL', price_key)
  if left > 0 then redis.call('SET', exact_key, fp, 'EX', left) else redis.call('SET', exact_key, fp) end
  webhook(id, now)
  return {'cached', kind}
end
local leader = live_leader(fp)
if leader then
  local kind = (redis.call('HGET', jk(leader), 'sha256') == job['sha256']) and 'exact' or 'geometric'
  create({'status', 'queued', 'leader', leader, 'cached', kind})
  redis.call('SADD', P .. ':waiters:' .. leader, id)
  redis.call('EXPIRE', P .. ':waiters:' .. leader, job_ttl)
  return {'attached', kind}
end
if from_index then return {'miss', ''} end
local backlog = redis.call('XLEN', P .. ':stream') + redis.call('ZCARD', P .. ':delayed')
  + tonumber(redis.call('GET', P .. ':fair:waiting') or '0')
if backlog >= bound then return {'full', tostring(backlog)} end
local sha = job['sha256']
model_reap(tonumber(now))
local present = redis.call('EXISTS', P .. ':model:' .. sha) == 1
if not present then model_release(sha) end   -- forget index entries of a model that expired by itself
local stored = tonumber(redis.call('GET', P .. ':models:bytes') or '0')
-- checked even when these bytes are stored already (for another owner's queued job): a 202 for them
-- and a 503 for any other model would tell a partner that someone has this exact file queued
if stored + #model > store_budget then return {'store_full', tostring(stored)} end
if not present then
  redis.call('SET', P .. ':model:' .. sha, model, 'EX', model_ttl)
  redis.call('HSET', P .. ':models:size', sha, #model)
  redis.call('INCRBY', P .. ':models:bytes', #model)
else
  redis.call('EXPIRE', P .. ':model:' .. sha, model_ttl, 'GT')
end
redis.call('ZADD', P .. ':models', 'GT', tonumber(now) + model_ttl * 1000, sha)
redis.call('HINCRBY', P .. ':models:refs', sha, 1)
create({'status', 'queued', 'attempts', '0'})
redis.call('SET', P .. ':inflight:' .. fp, id, 'EX', inflight_ttl)
enqueue(id, tonumber(ARGV[15]))
return {'queued', ''}
"""

#: A worker takes a delivered entry. ARGV: prefix, group, job_id, entry, worker, now.
#: Returns {status, attempts}: the job's status before ('done'/'failed'/'missing' → just ack).
START = _COMMON + r"""
local id = ARGV[3]
local st = redis.call('HGET', jk(id), 'status')
if not st then finish_acked(ARGV[4]); return {'missing', 0} end
if st == 'done' or st == 'failed' then finish_acked(ARGV[4]); return {st, 0} end
redis.call('HSET', jk(id), 'status', 'running', 'started_at', ARGV[6], 'worker', ARGV[5])
return {st, redis.call('HINCRBY', jk(id), 'attempts', 1)}
"""

#: Record a result once. ARGV: prefix, group, job_id, entry, result_json, now, cache_ttl.
#: Returns {applied (0/1), followers resolved}.
COMPLETE = _COMMON + r"""
local id, now, ttl = ARGV[3], ARGV[6], tonumber(ARGV[7])
finish_acked(ARGV[4])
local job = jk(id)
if redis.call('HGET', job, 'status') == 'done' then return {0, 0} end
local was = redis.call('HGET', job, 'status')
redis.call('HSET', job, 'status', 'done', 'result', ARGV[5], 'finished_at', now)
redis.call('HDEL', job, 'error')
redis.call('HINCRBY', job, 'completions', 1)
redis.call('ZREM', P .. ':dead', id)
webhook(id, now)
local fp, sha = redis.call('HGET', job, 'fingerprint'), redis.call('HGET', job, 'sha256')
if was ~= 'failed' then model_unref(sha, true) end   -- priced: its model is not needed any more
local material, ver = redis.call('HGET', job, 'material'), redis.call('HGET', job, 'rules_version')
redis.call('HSET', P .. ':price:' .. fp, 'result', ARGV[5], 'sha256', sha)
redis.call('EXPIRE', P .. ':price:' .. fp, ttl)
local owner = redis.call('HGET', job, 'owner') or ''
redis.call('SET', P .. ':exact:' .. owner .. ':' .. ver .. ':' .. material .. ':' .. sha, fp, 'EX', ttl)
if redis.call('GET', P .. ':inflight:' .. fp) == id then redis.call('DEL', P .. ':inflight:' .. fp) end
local followers = redis.call('SMEMBERS', P .. ':waiters:' .. id)
for _, f in ipairs(followers) do
  if redis.call('EXISTS', jk(f)) == 1 and redis.call('HGET', jk(f), 'status') ~= 'done' then
    redis.call('HSET', jk(f), 'status', 'done', 'result', ARGV[5], 'finished_at', now)
    redis.call('HDEL', jk(f), 'error')
    redis.call('HINCRBY', jk(f), 'completions', 1)
    webhook(f, now)
  end
end
redis.call('DEL', P .. ':waiters:' .. id)
return {1, #followers}
"""

#: Retry later. ARGV: prefix, group, job_id, entry, error, due_ms.
RETRY = _COMMON + r"""
finish_acked(ARGV[4])
if redis.call('HGET', jk(ARGV[3]), 'status') == 'done' then return 0 end
redis.call('HSET', jk(ARGV[3]), 'status', 'queued', 'error', ARGV[5])
redis.call('ZADD', P .. ':delayed', ARGV[6], ARGV[3])
return 1
"""

#: Give up: dead-letter the job, fail its followers. ARGV: prefix, group, job_id, entry, reason, now.
DEAD_LETTER = _COMMON + r"""
local id, now = ARGV[3], ARGV[6]
finish_acked(ARGV[4])
if redis.call('HGET', jk(id), 'status') == 'done' then return 0 end
redis.call('HSET', jk(id), 'status', 'failed', 'error', ARGV[5], 'finished_at', now)
redis.call('ZADD', P .. ':dead', now, id)
model_unref(redis.call('HGET', jk(id), 'sha256'), false)  -- kept until its TTL: re-queue may need it
webhook(id, now)
local fp = redis.call('HGET', jk(id), 'fingerprint') or ''
if redis.call('GET', P .. ':inflight:' .. fp) == id then redis.call('DEL', P .. ':inflight:' .. fp) end
for _, f in ipairs(redis.call('SMEMBERS', P .. ':waiters:' .. id)) do
  if redis.call('HGET', jk(f), 'status') == 'queued' then
    redis.call('HSET', jk(f), 'status', 'failed', 'finished_at', now,
               'error', 'the computation it waited for (job ' .. id .. ') failed: ' .. ARGV[5])
    webhook(f, now)
  end
end
return 1
"""

#: Graceful shutdown: give an unfinished entry back at once. ARGV: prefix, group, job_id, entry.
HANDBACK = _COMMON + r"""
finish_acked(ARGV[4])
if redis.call('HGET', jk(ARGV[3]), 'status') ~= 'running' then return 0 end
redis.call('HSET', jk(ARGV[3]), 'status', 'queued')
redis.call('HINCRBY', jk(ARGV[3]), 'attempts', -1)
enqueue(ARGV[3])
return 1
"""

#: Move retries whose back-off is over back into the stream. ARGV: prefix, group, now, limit.
PROMOTE = _COMMON + r"""
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(due) do
  redis.call('ZREM', P .. ':delayed', id)
  if redis.call('HGET', jk(id), 'status') == 'queued' then enqueue(id) end
end
return #due
"""

#: Keep our lease on an entry we are still working on (resets its idle time), unless another
#: worker reclaimed it meanwhile. ARGV: prefix, group, entry, consumer.
EXTEND = _COMMON + r"""
local p = redis.call('XPENDING', P .. ':stream', ARGV[2], ARGV[3], ARGV[3], 1)
if p[1] == nil or p[1][2] ~= ARGV[4] then return 0 end
redis.call('XCLAIM', P .. ':stream', ARGV[2], ARGV[4], 0, ARGV[3], 'JUSTID')
return 1
"""

#: A worker with ``count`` free slots takes work: unread entries first (FIFO jobs, ones moved for a
#: waiting worker), then fairly scheduled jobs moved from the lists and read *in the same step* — the
#: round decides at the moment a slot is free, so no partner's job waits unread ahead of a newcomer.
#: Found nothing and ``idle_ms`` > 0: the worker is registered as waiting for that long (it blocks on
#: the stream next; a submission moves a job in for it). ARGV: prefix, group, consumer, count, idle_ms.
#: Returns {entries (XREADGROUP shape), still waiting in the lists}.
CLAIM = _COMMON + r"""
local consumer, count, idle_ms = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREM', P .. ':fair:idle', consumer)
local got = {}
local function read(n)
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[2], consumer, 'COUNT', n, 'STREAMS', P .. ':stream', '>')
  if r then for _, e in ipairs(r[1][2]) do got[#got + 1] = e end end
end
read(count)
if #got < count and fair_dispatch(count - #got) > 0 then read(count - #got) end
if #got > 0 then
  wake()   -- what it read may have been moved for another waiting worker: move that one's again
elseif idle_ms > 0 then
  redis.call('ZADD', P .. ':fair:idle', clock_ms() + idle_ms, consumer)
end
return {got, tonumber(redis.call('GET', P .. ':fair:waiting') or '0')}
"""

#: When the longest-waiting job still in a fair-scheduling list was listed (ms, Redis clock; false: none)
#: — the head of each owner's list, the operators' and every partner's in the round, skipping heads
#: that ended meanwhile (the queue probe's ``pricing_queue_oldest_age_seconds``). ARGV: prefix, group.
FAIR_OLDEST = _COMMON + r"""
local oldest = false
local owners = redis.call('ZRANGE', P .. ':fair:active', 0, -1)
owners[#owners + 1] = 'internal'
for _, o in ipairs(owners) do
  for _, id in ipairs(redis.call('LRANGE', fq(o), 0, 9)) do
    local job = redis.call('HMGET', jk(id), 'status', 'listed_at')
    if job[1] == 'queued' and job[2] then
      local at = tonumber(job[2])
      if not oldest or at < oldest then oldest = at end
      break
    end
  end
end
return oldest
"""

#: Operator re-queue of a failed (or stuck) job. ARGV: prefix, group, job_id, now, inflight_ttl.
#: Returns {outcome}: missing|done|no_model|cached|attached|queued.
REQUEUE = _COMMON + r"""
local id, now = ARGV[3], ARGV[4]
local job = jk(id)
local st = redis.call('HGET', job, 'status')
if not st then return {'missing'} end
if st == 'done' then return {'done'} end
redis.call('ZREM', P .. ':dead', id)
redis.call('ZREM', P .. ':delayed', id)
local fp, sha = redis.call('HGET', job, 'fingerprint'), redis.call('HGET', job, 'sha256')
redis.call('HSET', job, 'status', 'queued', 'attempts', '0')
redis.call('HDEL', job, 'error', 'finished_at', 'leader')
local cached = redis.call('HMGET', P .. ':price:' .. fp, 'result', 'sha256')
if cached[1] then
  redis.call('HSET', job, 'status', 'done', 'result', cached[1], 'finished_at', now,
             'cached', (cached[2] == sha) and 'exact' or 'geometric')
  redis.call('HINCRBY', job, 'completions', 1)
  webhook(id, now)
  return {'cached'}
end
local leader = live_leader(fp)
if leader and leader ~= id then
  redis.call('HSET', job, 'leader', leader)
  redis.call('SADD', P .. ':waiters:' .. leader, id)
  return {'attached'}
end
if redis.call('EXISTS', P .. ':model:' .. sha) == 0 then
  redis.call('HSET', job, 'status', 'failed', 'error', 'model expired from the store; submit it again')
  return {'no_model'}
end
redis.call('SET', P .. ':inflight:' .. fp, id, 'EX', ARGV[5])
if st == 'failed' then redis.call('HINCRBY', P .. ':models:refs', sha, 1) end  -- needed again
enqueue(id)
return {'queued'}
"""

# Job-finished webhooks, isolated per owner: a finished job's id lands in the inbox ZSET
# ``:webhooks`` (``webhook()`` above, in the same script that records the outcome). Claiming moves
# the inbox into one due-time ZSET per owner (``:webhooks:owner:{owner}``) and keeps
# ``:webhooks:owners`` (owner → its earliest due time); a worker then leases the earliest due
# webhook of an owner that is *not busy in that worker*, so a partner whose endpoint hangs holds at
# most its own delivery slots while every other partner's webhooks keep flowing. A lease (due time
# pushed ``lease_ms`` ahead) makes a crash mid-delivery a delay. Each delivery's outcome is settled
# in one script: the job's webhook fields and its place in the schedule change together.
_WEBHOOKS = r"""
local owners_key = P .. ':webhooks:owners'
local function oq(o) return P .. ':webhooks:owner:' .. o end
local function refresh(o)   -- an owner's score is its earliest due time; no webhook left: gone
  local first = redis.call('ZRANGE', oq(o), 0, 0, 'WITHSCORES')
  if #first == 0 then redis.call('ZREM', owners_key, o) else redis.call('ZADD', owners_key, first[2], o) end
end
"""

#: Lease the next due webhook. ARGV: prefix, group, now, lease_ms, inbox batch, busy owners…
#: Returns {job_id, owner}, or nil when nothing is due for an owner that is not busy.
WEBHOOK_CLAIM = _COMMON + _WEBHOOKS + r"""
local now, lease, batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local inbox = redis.call('ZRANGE', P .. ':webhooks', 0, batch - 1, 'WITHSCORES')
for i = 1, #inbox, 2 do
  local id, due = inbox[i], inbox[i + 1]
  redis.call('ZREM', P .. ':webhooks', id)
  local o = redis.call('HGET', jk(id), 'owner')
  if o then   -- an expired job has nothing to deliver
    redis.call('ZADD', oq(o), due, id)
    redis.call('ZADD', owners_key, 'LT', due, o)
  end
end
local busy = {}
for i = 6, #ARGV do busy[ARGV[i]] = true end
-- at most #busy of the first #busy + 1 due owners are busy: a free one is found if any is due
for _, o in ipairs(redis.call('ZRANGEBYSCORE', owners_key, '-inf', now, 'LIMIT', 0, #ARGV - 4)) do
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

#: A delivery attempt's outcome. ARGV: prefix, group, job_id, owner, due_ms ('' = delivered or given
#: up: forget it), then field/value pairs recorded on the job (only while the job exists).
WEBHOOK_SETTLE = _COMMON + _WEBHOOKS + r"""
local id, o, due = ARGV[3], ARGV[4], ARGV[5]
if #ARGV > 5 and redis.call('EXISTS', jk(id)) == 1 then
  redis.call('HSET', jk(id), unpack(ARGV, 6))
end
if due == '' then redis.call('ZREM', oq(o), id) else redis.call('ZADD', oq(o), tonumber(due), id) end
redis.call('ZREM', P .. ':webhooks', id)   -- delivered without a claim (operator, tests)
refresh(o)
return 1
"""
