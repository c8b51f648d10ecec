"""Observing every HTTP request once it is answered: final status, duration, trace ids.

The gateway's and the sidecars' observability filter: it sits inside the SERVER span (so the
trace ids are the span's) and outside everything that may answer, so it sees every final
status, problem+json answers included. A client that goes away mid-request is recorded as 499
(the NGINX convention); an aiohttp HTTP exception with its own status. What is recorded (RED
metrics, the access-log line) is the server's :class:`RequestObserver`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from telemetry.tracing import current_trace_ids

__all__ = ["CLIENT_CLOSED", "ErrorAnswer", "RequestObserver", "request_observer_filter"]

CLIENT_CLOSED = 499

#: Turns an unexpected exception into an answer (e.g. a logged 500 problem+json).
ErrorAnswer = Callable[[web.Request, Exception], web.StreamResponse]


class RequestObserver(Protocol):
    """What one server records per request; both calls are on the hot path: keep them cheap."""

    def started(self, request: web.Request) -> None:
        """Before the inner filters run (in-flight count, labels the handler needs)."""

    def finished(self, request: web.Request, status: int, response: web.StreamResponse | None,
                 duration: float, trace_id: str | None, span_id: str | None) -> None:
        """After the answer (``response`` None when there is none: cancelled or raised)."""


def request_observer_filter(observer: RequestObserver, *, tracing: bool,
                            on_error: ErrorAnswer | None = None) -> Middleware:
    """Calls ``observer`` around every request; ``tracing`` reads the current span's ids.

    An exception other than an HTTP exception is answered by ``on_error`` when given (recorded
    with its answer's status), else it propagates (recorded as 500).
    """
    started, finished = observer.started, observer.finished

    @web.middleware
    async def observability(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        trace_id, span_id = current_trace_ids() if tracing else (None, None)
        started(request)
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception as exc:
            if on_error is None:
                raise
            response = on_error(request, exc)
            status = response.status
            return response
        finally:
            finished(request, status, response, time.perf_counter() - start, trace_id, span_id)

    return observability
