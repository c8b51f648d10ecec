"""Usage accounting filter: every authenticated partner request counted per partner per day.

Runs right after auth (it needs ``PARTNER_KEY``) and around everything else, so it sees the
rate limiter's 429, the load shedder's 503 and what the route's handler did. Counting is an
in-memory add (``gateway.usage.recorder``); Redis is written in the background, never awaited
here. Kinds: ``requests`` (all), ``orders``/``quotes`` (created: a 2xx to ``createOrder`` /
``createQuote``, not an idempotent replay), ``models_deduplicated`` (a quote the pricing queue
answered from its price cache or attached to a running computation: no legacy call),
``rate_limited`` (429), ``shed`` (503 for overload: load shedding, circuit breaker, pricing
backlog or model store full).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import CircuitOpen, GatewayError, LoadShed
from gateway.quotes.api import ModelStoreFull, QueueFull
from gateway.request_keys import OPERATION_KEY, PARTNER_KEY, QUOTE_OUTCOME_KEY
from gateway.usage.recorder import UsageRecorder

#: The operations whose success creates something a partner is billed for.
CREATED = {"createOrder": "orders", "createQuote": "quotes"}
SHED = (LoadShed, CircuitOpen, QueueFull, ModelStoreFull)
DEDUPLICATED = frozenset({"cached", "attached"})


def usage_filter(*, recorder: UsageRecorder) -> Middleware:
    """``recorder`` is started and stopped by the server (it owns the store and the flusher)."""

    @web.middleware
    async def usage(request: web.Request, handler: Handler) -> web.StreamResponse:
        partner = request[PARTNER_KEY].id
        recorder.count(partner, "requests")
        try:
            response = await handler(request)
        except GatewayError as exc:
            if isinstance(exc, SHED):
                recorder.count(partner, "shed")
            elif exc.status == 429:
                recorder.count(partner, "rate_limited")
            raise
        status = response.status
        if status == 429:
            recorder.count(partner, "rate_limited")
        elif 200 <= status < 300 and (op := request.get(OPERATION_KEY)) is not None:
            kind = CREATED.get(op[0].operation_id)
            outcome = request.get(QUOTE_OUTCOME_KEY)
            if kind is not None and outcome != "replay":
                recorder.count(partner, kind)
            if outcome in DEDUPLICATED:
                recorder.count(partner, "models_deduplicated")
        return response

    return usage
