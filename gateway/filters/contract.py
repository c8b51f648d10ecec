"""Contract filters: the partner API document (``gateway/openapi/partner-v1.yaml``) enforced at the edge.

On every external route under the document's server URL (``/partner/v1``), with the document
compiled once (``gateway.partner_api.contract.Contract``). Routing has already matched the
operation (``gateway/filters/routing.py``: a path the document does not have is a 404, a method it
does not declare there a 405 whose ``Allow`` lists exactly the document's methods, + ``HEAD`` where
``GET``). This filter runs after auth and rate limiting (the partner is known, and invalid
requests count against its windows like any other): path, query and header parameters, the
media type (415) and JSON bodies (read here, at most ``MAX_JSON_BYTES``, then handed on in
``REQUEST_BODY_KEY``) are checked; every violation is listed in one 400/404/422 problem
(``invalid_params``, each with its JSON pointer). Nothing invalid reaches the MES or the queue.

Each refusal: ``gateway_partner_validation_failures_total{operation,tier}`` +1, one log line
(``event.action: request-invalid``, the partner id and the violations' locations, pointers and
reasons — never the values or the body), and an event ``request.invalid`` on the SERVER span.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import trace

from gateway import metrics
from gateway.edge.request_body import read_json_body
from gateway.errors import RequestInvalid, UnsupportedMediaType
from gateway.partner_api.contract import MAX_JSON_BYTES, Contract, Operation
from gateway.partner_api.violations import Violation, summary
from gateway.request_keys import OPERATION_KEY, PARTNER_KEY, REQUEST_BODY_KEY, ROUTE_KEY, STATE_KEY

log = logging.getLogger("gateway.contract")
#: The tier label of a request no API key identified (a route under the document without auth),
#: and of a partner whose tier is not configured (bounded labels, as the rate limiter's).
NO_TIER, OTHER_TIER = "none", "other"
_LOGGED_VIOLATIONS = 20
#: media type (what aiohttp's ``request.content_type`` parses, about 4 µs) per raw header value:
#: partners send a handful of spellings, so parsing each once keeps it off the request path
_MEDIA_TYPES: dict[str, str] = {}
_MEDIA_TYPE_ENTRIES, _MEDIA_TYPE_CHARS = 256, 200


def _media_type(request: web.Request) -> str:
    """``request.content_type``, remembered per raw ``Content-Type`` value (bounded)."""
    raw = request.headers.get(hdrs.CONTENT_TYPE, "")
    found = _MEDIA_TYPES.get(raw)
    if found is None:
        found = request.content_type
        if len(raw) <= _MEDIA_TYPE_CHARS:  # a long (hostile) value is parsed, not remembered
            if len(_MEDIA_TYPES) >= _MEDIA_TYPE_ENTRIES:
                _MEDIA_TYPES.clear()
            _MEDIA_TYPES[raw] = found
    return found


def declare_failures(contract: Contract, tiers: Iterable[str]) -> None:
    """Every operation x tier of the failure counter at 0 from start-up (rate() sees the first)."""
    for operation in contract.operation_ids:
        for tier in (*tiers, NO_TIER, OTHER_TIER):
            metrics.PARTNER_VALIDATION_FAILURES.labels(operation=operation, tier=tier)


async def _violations(request: web.Request, op: Operation, path: dict[str, str]) -> list[Violation]:
    found = op.check_request(path, request)
    if not op.takes_body:
        if request.body_exists:  # never forwarded: to a legacy that ignores it, a smuggled request
            found.append(Violation("body", "", "is not allowed: this operation takes no request body",
                                   malformed=True))
        return found
    if not request.body_exists:
        if op.body_required:
            found.append(Violation("body", "", "is required", malformed=True))
        return found
    ctype = _media_type(request)
    if ctype not in op.media:
        raise UnsupportedMediaType(f"send the body as {' or '.join(op.media)}, not {ctype[:60]}")
    validator = op.media[ctype]
    if validator is None:  # not JSON (an STL model): the handler reads and checks it
        return found
    route = request[ROUTE_KEY]
    raw = await read_json_body(request, min(MAX_JSON_BYTES, route.max_body_bytes), route.body_timeout)
    request[REQUEST_BODY_KEY] = raw
    _, body_violations = op.check_json(validator, raw)
    return found + body_violations


def contract_filter() -> Middleware:
    """Check the request against its operation (matched by routing, ``OPERATION_KEY``)."""

    @web.middleware
    async def contract_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        matched = request.get(OPERATION_KEY)
        if matched is None:  # not under the document's server URL (routing matched it, or not)
            return await handler(request)
        op, path = matched
        found = await _violations(request, op, path)
        if not found:
            return await handler(request)
        partner = request.get(PARTNER_KEY)
        tiers = request.app[STATE_KEY].config.ratelimit.tiers
        tier = NO_TIER if partner is None else partner.tier if partner.tier in tiers else OTHER_TIER
        metrics.PARTNER_VALIDATION_FAILURES.labels(operation=op.operation_id, tier=tier).inc()
        listed = [f"{v.location} {v.pointer or '/'}: {v.reason}" for v in found[:_LOGGED_VIOLATIONS]]
        log.info("request violates the partner API document (%s, %d violations)", op.operation_id,
                 len(found), extra={"event.action": "request-invalid", "gateway.operation": op.operation_id,
                                    "gateway.partner": partner.id if partner is not None else None,
                                    "gateway.tier": tier, "gateway.violations": listed})
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("request.invalid", {"mes_edge.operation": op.operation_id,
                                               "mes_edge.violations": listed,
                                               "mes_edge.violation_count": len(found)})
        raise RequestInvalid(summary(found), params=[v.as_param() for v in found],
                             malformed=any(v.malformed for v in found),
                             path_only=all(v.location == "path" for v in found))

    return contract_check
