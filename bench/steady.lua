-- A steady request rate for wrk 4.1 (wrk2, which paces natively, is not packaged in Debian).
--
--   wrk -t2 -c8 -d8s --latency -s bench/steady.lua URL -- <requests per second per wrk thread>
--
-- Each wrk thread sends on a schedule of its own: Poisson arrivals (exponential gaps) at the
-- given rate, spread over the thread's connections. delay() is called when a connection is
-- free to send; it takes the next slot of the schedule and waits until that slot, so the rate
-- does not depend on the latency of the server under test (as long as a connection is free).
-- A slot that is already late is sent at once; one more than CATCH_UP_MS late is dropped
-- (the schedule restarts from now), so a stall cannot turn into an unbounded burst.
-- wrk starts its latency clock when it writes the request, so the wait is not latency.
-- wrk waits whole milliseconds: each send is within +-0.5 ms of its slot, and since the
-- schedule is absolute the rounding does not add up.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } steady_timespec;
int clock_gettime(int clk_id, steady_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local CATCH_UP_MS = 5
local clock = ffi.new("steady_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
   return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local next_thread_id = 0
local mean_gap_ms = nil
local next_slot_ms = nil

function setup(thread)
   next_thread_id = next_thread_id + 1
   thread:set("thread_id", next_thread_id)
end

function init(args)
   local rate = tonumber(args[1])
   if rate == nil or rate <= 0 then
      error("steady.lua needs the requests per second per wrk thread: wrk ... URL -- <rate>")
   end
   mean_gap_ms = 1000 / rate
   -- each wrk thread has its own Lua state: seed them differently
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function delay()
   local now = now_ms()
   if next_slot_ms == nil or next_slot_ms < now - CATCH_UP_MS then
      next_slot_ms = now
   end
   next_slot_ms = next_slot_ms - mean_gap_ms * math.log(1 - math.random())
   local wait = next_slot_ms - now
   if wait <= 0 then
      return 0
   end
   return math.floor(wait + 0.5)
end
