"""Admin listener (default 127.0.0.1:9901): metrics, health, readiness, effective config, upstreams.

``/config``, ``/upstreams``, ``/cache/purge`` and ``/usage/export`` need an operator token
(``gateway.auth.operator``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from aiohttp import web

from gateway.auth.operator import OperatorGuard
from gateway.cache import ResponseCache
from gateway.cache.purge import purge_handler
from gateway.metrics import publish_gauges
from gateway.request_keys import STATE_KEY
from gateway.usage import UsageRecorder
from gateway.usage.api import export_handler
from resilience.problem import problem_response
from telemetry.metrics import metrics_handler
from telemetry.redaction import redact_value


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.ready:
        return web.json_response({"status": "ready"})
    missing = sorted({r.cluster for r in state.config.routes
                      if r.handler is None and state.clusters.get(r.cluster).healthy_endpoints == 0})
    detail = "draining" if state.draining else f"no healthy endpoint in: {', '.join(missing)}"
    return problem_response(status=503, title="Not ready", type_slug="not-ready", detail=detail,
                            request_id=None, extra={"clusters_without_healthy_endpoint": missing})


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    return value


async def config_handler(request: web.Request) -> web.Response:
    """The effective configuration after defaults and overrides, secrets redacted."""
    state = request.app[STATE_KEY]
    data = redact_value("config", _jsonable(state.config))
    return web.json_response(data, dumps=lambda d: json.dumps(d, indent=2, default=str))


async def upstreams_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].clusters.snapshot(),
                             dumps=lambda d: json.dumps(d, indent=2, default=str))


def build_admin_app(state: Any, cache: ResponseCache | None = None,
                    usage: UsageRecorder | None = None) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    serve_metrics = metrics_handler()
    # what reads the config or topology or changes state needs an operator token, even on loopback
    # (a local process or an SSRF reaching 127.0.0.1 is not an operator); probes and Prometheus
    # (/metrics, /healthz, /readyz) stay open
    operator = OperatorGuard(lambda: state.config.operator_auth, listener="admin")

    async def metrics(request: web.Request) -> web.StreamResponse:
        publish_gauges()  # this process's live counts; other workers publish once a second
        return await serve_metrics(request)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/config", operator.protect(config_handler))
    app.router.add_get("/upstreams", operator.protect(upstreams_handler))  # endpoint addresses
    if cache is not None:
        app.router.add_post("/cache/purge", operator.protect(purge_handler(cache)))  # docs/caching.md
    if usage is not None:  # every partner's usage per day, CSV/JSON (docs/partner-api.md#usage)
        app.router.add_get("/usage/export", operator.protect(export_handler(usage)))
    return app
