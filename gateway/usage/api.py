"""``GET /partner/v1/usage`` (a partner's own usage and remaining quota) and the operators' export
on the admin listener (``GET /usage/export?from=&to=&format=csv|json``, operator token)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.auth.partners import Partner
from gateway.errors import RequestInvalid
from gateway.ratelimit.decision import Decision
from gateway.request_keys import PARTNER_KEY, RATELIMIT_DECISION_KEY, REQUEST_ID_KEY, STATE_KEY
from gateway.usage.recorder import UsageRecorder
from gateway.usage.report import export_rows, parse_range, partner_days, to_csv
from resilience.problem import problem_response
from sharedstate.errors import REDIS_ERRORS

log = logging.getLogger("gateway.usage")


def usage_handler(recorder: UsageRecorder) -> Handler:
    """The partner is the key's (``PARTNER_KEY``): no parameter can name another one."""

    async def usage(request: web.Request) -> web.StreamResponse:
        partner: Partner = request[PARTNER_KEY]
        first, last = parse_range(request.query.get("from"), request.query.get("to"),
                                  max_days=recorder.config.max_range_days)
        try:
            rows, totals = await partner_days(recorder.store, partner.id, first, last)
        except REDIS_ERRORS as exc:
            log.warning("usage read failed: %s", type(exc).__name__, extra={
                "event.action": "usage-read-failed", "gateway.partner": partner.id})
            return problem_response(status=503, title="Usage unavailable", type_slug="usage-unavailable",
                                    detail="usage counts cannot be read right now; try again later",
                                    request_id=request.get(REQUEST_ID_KEY), retry_after=5)
        cfg = request.app[STATE_KEY].config.ratelimit
        return web.json_response({
            "partner_id": partner.id, "from": first.isoformat(), "to": last.isoformat(), "timezone": "UTC",
            "days": rows, "totals": totals,
            "quota": {"tier": partner.tier,
                      "windows": _windows(cfg.windows_for(partner.id, partner.tier),
                                          request.get(RATELIMIT_DECISION_KEY))}})

    return usage


def _windows(configured: Any, decision: Decision | None) -> list[dict[str, Any]]:
    """The partner's windows with what the decision of this request left (None: not known)."""
    known = ({w.name: (r, t) for w, r, t in zip(decision.windows, decision.remaining, decision.reset_in,
                                                strict=True)} if decision is not None else {})
    out = []
    for w in configured:
        remaining, reset = known.get(w.name, (None, None))
        out.append({"name": w.name, "limit": w.item.amount, "period_seconds": int(w.seconds),
                    "remaining": max(0, remaining) if remaining is not None else None,
                    "reset_seconds": round(reset, 3) if reset is not None else None})
    return out


def export_handler(recorder: UsageRecorder) -> Handler:
    """Every partner's days as CSV (default) or JSON; problem+json for a bad range or format."""

    async def export(request: web.Request) -> web.StreamResponse:
        fmt = request.query.get("format", "csv")
        try:
            if fmt not in ("csv", "json"):
                raise RequestInvalid("format must be csv or json", malformed=False, path_only=False, params=[
                    {"name": "format", "in": "query", "pointer": "/format", "reason": "must be csv or json"}])
            first, last = parse_range(request.query.get("from"), request.query.get("to"),
                                      max_days=recorder.config.max_range_days)
            rows = await export_rows(recorder.store, first, last)
        except RequestInvalid as exc:
            return problem_response(status=exc.status, title=exc.title, type_slug=exc.type_slug,
                                    detail=str(exc), request_id=None, extra=exc.extra)
        except REDIS_ERRORS as exc:
            return problem_response(status=503, title="Usage unavailable", type_slug="usage-unavailable",
                                    detail=f"usage counts cannot be read: {type(exc).__name__}",
                                    request_id=None, retry_after=5)
        name = f"usage-{first.isoformat()}-{last.isoformat()}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt == "json":
            return web.json_response({"from": first.isoformat(), "to": last.isoformat(), "timezone": "UTC",
                                      "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                      "rows": rows}, headers=headers)
        return web.Response(text=to_csv(rows), content_type="text/csv", headers=headers)

    return export
