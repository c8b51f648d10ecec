"""Error filter: every failure becomes one RFC 9457 problem+json response, never a stack trace."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import GatewayError
from gateway.request_keys import REQUEST_ID_KEY
from resilience.problem import problem_response

log = logging.getLogger("gateway.errors")


#: What a client outside sees as ``detail`` of a 5xx (the full detail, naming clusters, endpoints,
#: addresses and ports, goes to the log only).
PUBLIC_DETAILS = {502: "The service behind the gateway failed; try again later.",
                  503: "The service is temporarily unavailable; try again later.",
                  504: "The service behind the gateway did not answer in time; try again later."}


def error_filter(*, public: bool = False) -> Middleware:
    """Maps GatewayError subclasses, aiohttp HTTP exceptions and anything unexpected to problem+json.

    ``public`` (the external listener): 5xx answers carry a generic ``detail`` only.
    """

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.get(REQUEST_ID_KEY)
        try:
            return await handler(request)
        except GatewayError as exc:
            if exc.status >= 500:
                log.warning("%s: %s", exc.title, exc.detail, extra={
                    "event.action": "request-failed", "error.type": type(exc).__name__,
                    "http.response.status_code": exc.status, "url.path": request.path})
            detail = PUBLIC_DETAILS.get(exc.status, exc.title) if public and exc.status >= 500 else exc.detail
            return problem_response(status=exc.status, title=exc.title, type_slug=exc.type_slug,
                                    detail=detail, request_id=rid, retry_after=exc.retry_after,
                                    headers=exc.headers, extra=exc.extra)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_response(status=exc.status, title=exc.reason,
                                    type_slug=exc.reason.lower().replace(" ", "-"),
                                    detail=exc.text or exc.reason, request_id=rid)
        except (ConnectionResetError, ConnectionAbortedError):
            raise  # the client went away; nothing to answer
        except Exception:
            log.exception("unhandled error in the gateway", extra={
                "event.action": "internal-error", "url.path": request.path})
            return problem_response(status=500, title="Internal gateway error", type_slug="internal",
                                    detail="The gateway failed to handle the request; see its logs.",
                                    request_id=rid)

    return errors
