"""HTTP protocol errors (malformed request line, oversized headers, bad method) as problem+json.

aiohttp answers those itself, before any middleware runs, with a text/plain
body. The gateway promises problem+json with a request id for every error, so
the listener's connection handler is a small subclass that renders them like
every other error and counts them (they never reach the access log filter).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import metrics
from gateway.filters.request_id import new_request_id
from gateway.problem import problem_response


class _ProblemRequestHandler(RequestHandler):
    listener = "unknown"

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if a response already started
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        metrics.PROTOCOL_ERRORS.labels(listener=self.listener, status=str(status)).inc()
        detail = "The request is not valid HTTP/1.1." if status < 500 else "The request could not be handled."
        response = problem_response(status=status, title=phrase, type_slug="malformed-request",
                                    detail=detail, request_id=new_request_id())
        response.force_close()
        return response


class _ProblemServer(web.Server):
    handler_class: type[_ProblemRequestHandler] = _ProblemRequestHandler

    def __call__(self) -> RequestHandler:
        return self.handler_class(self, loop=self._loop, **self._kwargs)


class ListenerRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors with problem+json."""

    def __init__(self, app: web.Application, *, listener: str, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._handler_class = type("ProblemRequestHandler", (_ProblemRequestHandler,), {"listener": listener})

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        server = _ProblemServer(plain.request_handler, request_factory=plain.request_factory,
                                loop=plain._loop, **plain._kwargs)
        server.handler_class = self._handler_class
        return server
