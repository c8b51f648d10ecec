"""RFC 9457 problem+json errors and the middleware that maps every failure to one.

Handlers raise :class:`Problem` (or an aiohttp ``HTTPException``); the middleware
turns it into ``application/problem+json`` and logs it. Database and Redis outages
become 503 with ``Retry-After``; nothing a client sends can produce a 500 or a trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import asyncpg
import redis.exceptions
from aiohttp import web
from aiohttp.typedefs import Middleware

from legacy_sim.events import log_event, since_ns

PROBLEM_CONTENT_TYPE = "application/problem+json"

logger = logging.getLogger("legacy_sim.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Library errors meaning "a backing store is unavailable or too slow" -> 503.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a connection whose server session was terminated mid-call
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,  # ClusterDownError / MasterDownError: a Cluster failing over
    redis.exceptions.RedisClusterException,  # not a RedisError: no node of a Cluster answers
    OSError,
    TimeoutError,
)


class Problem(Exception):
    """An error answered as problem+json; ``extra`` members are added to the body."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.extra = extra


def invalid_field(field: str, detail: str) -> Problem:
    """A 422 naming the offending field (``invalid_params`` as in RFC 9457 §3)."""
    return Problem(422, f"{field}: {detail}", invalid_params=[{"name": field, "reason": detail}])


def problem_response(status: int, detail: str, *, title: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    """Build an ``application/problem+json`` response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title or HTTPStatus(status).phrase,
                            "status": status, "detail": detail, **extra}
    response = web.json_response(body, status=status, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _store_name(exc: BaseException) -> str:
    if isinstance(exc, redis.exceptions.RedisError | redis.exceptions.RedisClusterException):
        return "redis"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return "postgresql"
    return "unknown"  # OSError/TimeoutError: a socket of either store


def log_store_error(log: logging.Logger, exc: BaseException, message: str,
                    fields: dict[str, object] | None = None) -> None:
    """The ``db-error`` event: a database or Redis call failed (``db.system`` names which)."""
    log_event(log, message, action="db-error", outcome="failure", level=logging.ERROR,
              fields={"db.system": _store_name(exc), "error.type": exc.__class__.__name__,
                      "error.message": str(exc)[:500], **(fields or {})})


def _log_answer(request: web.Request, status: int, detail: str, started_ns: int) -> None:
    """The ``api-error`` event: a 4xx/5xx answered (order.id/trace.id come from the context)."""
    route = request.match_info.route.resource
    log_event(logger, f"{request.method} {request.path} answered {status}: {detail[:200]}",
              action="api-error", outcome="failure", duration_ns=since_ns(started_ns),
              level=logging.ERROR if status >= 500 else logging.WARNING,
              fields={"http.request.method": request.method, "url.path": request.path,
                      "http.route": route.canonical if route is not None else None,
                      "http.response.status_code": status})


def problem_middleware(service: str) -> Middleware:
    """Every error leaves as problem+json, never as a stack trace; every 4xx/5xx is logged.

    Innermost of the stand-ins' middlewares, so its log lines carry the request's span ids.
    Events: ``api-error`` for each error answered, ``db-error`` when a backing store failed (503),
    ``internal-error`` with the stack trace for a bug (500).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter_ns()
        try:
            response = await handler(request)
        except Problem as exc:
            response = problem_response(exc.status, exc.detail, title=exc.title, instance=request.path,
                                        **exc.extra)
            detail = exc.detail
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            detail = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
            response = problem_response(exc.status, detail, headers=headers, instance=request.path)
        except STORE_ERRORS as exc:
            log_store_error(logger, exc, f"{service} backing store unavailable: {exc.__class__.__name__}",
                            {"url.path": request.path})
            detail = f"{service} backing store unavailable ({exc.__class__.__name__})"
            response = problem_response(503, detail, headers={"Retry-After": "5"}, instance=request.path)
        except Exception as exc:  # a bug: answer 500 problem+json, keep the stack trace in the log
            logger.exception("%s internal error: %s", service, exc.__class__.__name__,
                             extra={"event.action": "internal-error", "event.outcome": "failure",
                                    "url.path": request.path})
            detail = f"{service} internal error ({exc.__class__.__name__})"
            response = problem_response(500, detail, instance=request.path)
        else:
            detail = getattr(response, "reason", "") or ""
        if response.status >= 400:
            _log_answer(request, response.status, detail, started)
        return response

    return middleware
