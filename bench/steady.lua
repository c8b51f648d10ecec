-- Steady moderate load for wrk 4.1 (wrk2 is not packaged in Debian).
-- Each connection waits a random 0-8 ms between a response and its next
-- request: with 8 connections that is ~1.9-2k req/s on this box. A fixed wait
-- puts the connections in lock-step and inflates p50 two to three times.
-- wrk starts its latency clock when the request is written, so the wait is
-- not counted as latency.

local next_thread_id = 0

function setup(thread)
   next_thread_id = next_thread_id + 1
   thread:set("thread_id", next_thread_id)
end

function init(args)
   -- each wrk thread has its own Lua state: seed them differently
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function delay()
   return math.random(0, 8)
end
