-- The MES under a steady wrk load while the database kit migrates it (bench/mes_wrk.py):
--
--   MES_ARCHIVED_IDS=12,345 MES_CRM_REF=ref wrk -t2 -c4 -d1h --latency --timeout 30s \
--       -s bench/mes_migration.lua URL -- <requests per second per wrk thread>
--
-- Paced by bench/steady.lua (Poisson arrivals at the given rate). Each connection cycles through
-- the operators' and clients' calls: an active-status list, the unfiltered list, a CLOSED page,
-- one order due for the archive (by id), a new order (201) and a CRM redelivery of an order due
-- for the archive (200, the same order back). wrk counts every answer that is not 2xx/3xx.
-- done() prints "p95_us <n>" (wrk's own --latency report stops at 50/75/90/99).

dofile(os.getenv("MES_STEADY_LUA") or "bench/steady.lua")

local ids = {}
for id in string.gmatch(os.getenv("MES_ARCHIVED_IDS") or "1", "%d+") do
   ids[#ids + 1] = id
end
local crm_ref = os.getenv("MES_CRM_REF") or "none"
local new_order = '{"customer": "wrk", "material": "PLA", "quantity": 1, "model_name": "w.stl"}'
local redelivery = '{"customer": "wrk", "material": "PLA", "quantity": 1, "model_name": "w.stl", '
   .. '"source": "crm", "external_ref": "' .. crm_ref .. '"}'
local json = { ["Content-Type"] = "application/json" }
local n = 0

function request()
   n = n + 1
   local k = n % 6
   if k == 0 then
      return wrk.format("GET", "/orders?status=SHIPPED")
   elseif k == 1 then
      return wrk.format("GET", "/orders")
   elseif k == 2 then
      return wrk.format("GET", "/orders?status=CLOSED&page=3")
   elseif k == 3 then
      return wrk.format("GET", "/orders/" .. ids[(n % #ids) + 1])
   elseif k == 4 then
      return wrk.format("POST", "/orders", json, new_order)
   end
   return wrk.format("POST", "/orders", json, redelivery)
end

function done(summary, latency, requests)
   io.write(string.format("p95_us %d\n", latency:percentile(95)))
end
