"""The listener runner: an aiohttp ``AppRunner`` whose connections answer protocol errors as problem+json.

What the answer looks like, and what is counted and logged, is ``gateway/edge/protocol_errors.py``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway import metrics
from gateway.edge.protocol_errors import STATUSES, ProblemRequestHandler


class _ProblemServer(web.Server):
    handler_class: type[ProblemRequestHandler] = ProblemRequestHandler

    def __call__(self) -> RequestHandler:
        return self.handler_class(self, loop=self._loop, **self._kwargs)


class ListenerRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors with problem+json."""

    def __init__(self, app: web.Application, *, listener: str, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._handler_class = type("ProblemRequestHandler", (ProblemRequestHandler,), {"listener": listener})
        for status in STATUSES:
            metrics.PROTOCOL_ERRORS.labels(listener=listener, status=status)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        server = _ProblemServer(plain.request_handler, request_factory=plain.request_factory,
                                loop=plain._loop, **plain._kwargs)
        server.handler_class = self._handler_class
        return server
