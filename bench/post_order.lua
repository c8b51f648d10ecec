-- POST one new order (the partner API document's example NewOrder) for wrk 4.1, at saturation:
--
--   wrk -t2 -c64 -d3s --latency -s bench/post_order.lua -H 'X-API-Key: KEY' URL
--
-- bench.policies --pair order,order-unchecked uses it: the body is validated against the document
-- on the partner route and passed unchecked on the other. The bench's endpoint (nginx) answers
-- any method on /orders with its fixed body, so no order is created anywhere.
wrk.method = "POST"
wrk.body = '{"customer": "ACME GmbH", "material": "PLA", "quantity": 2, "model_name": "bracket.stl"}'
wrk.headers["Content-Type"] = "application/json"
