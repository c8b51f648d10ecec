"""RFC 9457 problem+json errors and the middleware that maps every failure to one.

Handlers raise :class:`Problem` (or an aiohttp ``HTTPException``); the middleware
turns it into ``application/problem+json``. Database and Redis outages become
503 with ``Retry-After``; nothing a client sends can produce a 500 or a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import asyncpg
import redis.exceptions
from aiohttp import web
from aiohttp.typedefs import Middleware

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


def problem_middleware(service: str) -> Middleware:
    """Outermost middleware: every error leaves as problem+json, never as a 500 trace."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as exc:
            return problem_response(exc.status, exc.detail, title=exc.title, instance=request.path,
                                    **exc.extra)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            detail = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
            return problem_response(exc.status, detail, headers=headers, instance=request.path)
        except STORE_ERRORS as exc:
            logger.error("%s backing store unavailable: %s", service, exc.__class__.__name__,
                         extra={"event.action": "store-error", "event.outcome": "failure",
                                "error.type": exc.__class__.__name__, "error.message": str(exc)[:500],
                                "url.path": request.path})
            return problem_response(503, f"{service} backing store unavailable ({exc.__class__.__name__})",
                                    headers={"Retry-After": "5"}, instance=request.path)

    return middleware
