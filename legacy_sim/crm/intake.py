"""CRM order intake: validate, number, publish to ``crm:orders`` inside a PRODUCER span.

The envelope carries the producer span's ``traceparent``/``tracestate`` (the MES consumer's span
becomes its child, so a CRM order is one trace). With tracing off in this process a valid inbound
``traceparent`` is passed through unchanged, like any proxy that does not trace itself would.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from contracts.crm_envelope import TRACEPARENT, CrmOrderMessage, utc_now_iso
from contracts.order_input import InvalidOrder, parse_new_order
from legacy_sim import metrics
from legacy_sim.crm.state import CRM_CONFIG, REDIS, TRACING
from legacy_sim.events import log_event, since_ns
from legacy_sim.problem import STORE_ERRORS, invalid_field
from legacy_sim.request_body import read_json_object
from telemetry import producer_span

logger = logging.getLogger("legacy_sim.crm")

ORDER_SEQUENCE_KEY = "crm:order_seq"
#: The order records carry the queue's name as hash tag: on Redis Cluster the intake's MULTI (XADD to
#: ``crm:orders`` + HSET of the record) must name keys of one slot (docs/redis.md, key layout).
ORDER_KEY_PREFIX = "crm:order:{crm:orders}:"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pass_through_trace_context(request: web.Request, fields: dict[str, str]) -> None:
    """Tracing off here: copy a valid inbound trace context so the MES side can still continue it."""
    traceparent = request.headers.get("traceparent", "").strip().lower()
    if TRACEPARENT.match(traceparent):
        fields["traceparent"] = traceparent
        tracestate = request.headers.get("tracestate", "").strip()
        if tracestate:
            fields["tracestate"] = tracestate


async def submit_order(request: web.Request) -> web.Response:
    """Accept an order: 202 ``{crm_order_id, status: "QUEUED"}`` once it is on the stream."""
    started = time.perf_counter_ns()
    config, client = request.app[CRM_CONFIG], request.app[REDIS]
    body = await read_json_object(request, config.max_json_bytes)
    try:
        order = parse_new_order(body, allow_external_ref=False)
    except InvalidOrder as exc:
        raise invalid_field(exc.field, exc.reason) from None
    crm_order_id = ""
    try:
        crm_order_id = f"CRM-{await client.incr(ORDER_SEQUENCE_KEY):08d}"
        message = CrmOrderMessage(crm_order_id=crm_order_id, order=order, submitted_at=utc_now_iso())
        fields = message.to_fields()
        attributes = {"messaging.system": "redis", "messaging.destination.name": config.stream,
                      "messaging.operation.type": "send", "crm.order_id": crm_order_id}
        with producer_span(f"{config.stream} publish", fields, attributes,
                           tracer_provider=request.app[TRACING].provider) as span:
            if "traceparent" not in fields:
                _pass_through_trace_context(request, fields)
            async with client.pipeline(transaction=True) as pipe:
                pipe.xadd(config.stream, fields)  # type: ignore[arg-type]
                pipe.hset(ORDER_KEY_PREFIX + crm_order_id, mapping={
                    "status": "QUEUED", "payload": fields["payload"], "submitted_at": message.submitted_at})
                entry_id, _ = await pipe.execute()
            entry = _text(entry_id)
            span.set_attribute("messaging.message.id", entry)
            metrics.CRM_QUEUE_WRITES.labels(outcome="success").inc()
            log_event(logger, f"CRM order {crm_order_id} queued as {entry}", action="crm-queue-write",
                      duration_ns=since_ns(started),
                      fields={"crm.order_id": crm_order_id, "messaging.message.id": entry,
                              "messaging.destination.name": config.stream})
    except STORE_ERRORS as exc:
        metrics.CRM_QUEUE_WRITES.labels(outcome="failure").inc()
        log_event(logger, f"CRM order {crm_order_id or '(unnumbered)'} not queued: {exc.__class__.__name__}",
                  action="crm-queue-write", outcome="failure", duration_ns=since_ns(started),
                  level=logging.ERROR,
                  fields={"crm.order_id": crm_order_id or None, "messaging.destination.name": config.stream,
                          "error.type": exc.__class__.__name__})
        raise  # the problem middleware answers 503 and logs the db-error
    return web.json_response({"crm_order_id": crm_order_id, "status": "QUEUED"}, status=202,
                             headers={"Location": f"/orders/{crm_order_id}"})
