"""HTTP protocol errors (malformed request line, oversized headers, bad method) as problem+json.

aiohttp answers those itself, before any middleware runs, with a text/plain body and a full
traceback at ERROR in the log — anyone on the internet could flood the log that way. The
listener's connection handler is a small subclass that renders them like every other error
(problem+json with a request id; 431 for too many or too large header fields, 414 for a too
long request line), counts every one in ``gateway_protocol_errors_total{listener,status}``
(present at 0 from start-up) and logs one WARNING line without traceback, sampled: at most
``LOG_LINES`` per ``LOG_INTERVAL`` seconds and listener, then one summary line.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import metrics
from resilience.problem import problem_response
from telemetry.log_sampling import LogSampler
from telemetry.request_id import new_request_id

log = logging.getLogger("gateway.protocol")
LOG_LINES = 5
LOG_INTERVAL = 10.0
#: The statuses a protocol error can have here (their counters exist from start-up).
STATUSES = ("400", "414", "431", "500", "501")


def _summary(listener: str, suppressed: int, interval: float) -> None:
    log.warning("%d more malformed requests on the %s listener in the last %.0f s (not logged one by one)",
                suppressed, listener, interval, extra={"event.action": "protocol-error-summary",
                                                        "gateway.suppressed": suppressed})


_sampler = LogSampler(lines=LOG_LINES, interval=LOG_INTERVAL, summary=_summary)


def status_of(status: int, exc: BaseException | None) -> int:
    """431 for header fields too large or too many, 414 for a too long request line."""
    if isinstance(exc, LineTooLong):
        # aiohttp's C parser (pinned) reports the request target as a bytearray (its URL buffer)
        # and a header name or value as bytes
        return 414 if exc.args and isinstance(exc.args[0], bytearray) else 431
    if isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc.message):
        return 431
    return status


class ProblemRequestHandler(RequestHandler):
    """A connection handler that answers protocol errors as problem+json (one subclass per listener)."""

    listener = "unknown"

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        status = status_of(status, exc)
        metrics.PROTOCOL_ERRORS.labels(listener=self.listener, status=str(status)).inc()
        if _sampler.allow(self.listener):
            what = getattr(exc, "message", None) or str(exc or message)
            log.log(logging.ERROR if status >= 500 else logging.WARNING,
                    "malformed request from %s on the %s listener: %s: %s", request.remote, self.listener,
                    type(exc).__name__ if exc else "error", what[:200],
                    exc_info=exc if status >= 500 else None,  # a bug of ours, not the client's input
                    extra={"event.action": "protocol-error", "http.response.status_code": status})
        if request.writer.output_size > 0:  # part of a response is out: the connection is broken
            raise ConnectionError("response already started; cannot send an error answer")
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        detail = "The request is not valid HTTP/1.1." if status < 500 else "The request could not be handled."
        if status == 431:
            detail = "The request's header fields are too many or too large."
        elif status == 414:
            detail = "The request target is too long."
        response = problem_response(status=status, title=phrase, type_slug="malformed-request",
                                    detail=detail, request_id=new_request_id())
        response.force_close()
        return response
