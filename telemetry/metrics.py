"""The Prometheus registry convention: which registry a process exposes, and how.

* **Per-process** (default): metrics live in ``prometheus_client.REGISTRY`` and the process
  exposes them itself — on its aiohttp admin app (:func:`metrics_handler`/:func:`metrics_app`) or,
  without HTTP, on a small thread server (:func:`start_metrics_server`, which can answer
  ``/healthz``/``/readyz`` beside ``/metrics`` for the process's probes).
* **Multiprocess** (the gateway's N workers): the master points ``PROMETHEUS_MULTIPROC_DIR`` at an
  empty directory *before* any worker imports ``prometheus_client``, calls
  :func:`mark_process_dead` for every worker that exits and removes the directory at the end.
  Each worker writes its values to mmap files there; :func:`metrics_registry` then returns a
  registry whose ``MultiProcessCollector`` sums every worker's files, so a scrape of any worker
  sees the whole gateway. Gauges must name a ``multiprocess_mode``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import start_http_server as _start_http_server

__all__ = ["MULTIPROC_DIR_ENV", "HealthCheck", "mark_process_dead", "metrics_app", "metrics_handler",
           "metrics_registry", "reset_multiprocess_dir", "start_metrics_server"]

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: a probe's check, called on the server's thread: None when healthy, else why not (the 503 body)
HealthCheck = Callable[[], "str | None"]


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: multiprocess-summing if ``$PROMETHEUS_MULTIPROC_DIR`` is set, else REGISTRY.

    In multiprocess mode a new (collect-only) registry is returned on each call: build it once at
    start-up. Never register metrics on it; create them as usual, at import time.
    """
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def metrics_handler(registry: CollectorRegistry | None = None) -> Handler:
    """An aiohttp handler serving ``registry`` (default :func:`metrics_registry`) in the text format.

    Rendering runs on a worker thread: in multiprocess mode it reads every worker's files, which
    must not stall the event loop that also serves requests.
    """
    exposed = registry if registry is not None else metrics_registry()

    async def metrics(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, exposed)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def metrics_app(registry: CollectorRegistry | None = None) -> web.Application:
    """A tiny aiohttp app answering ``GET /metrics``; mount it or run it as the admin listener."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(registry))
    return app


def start_metrics_server(
        port: int, *, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None,
        health: Mapping[str, HealthCheck] | None = None) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` from a daemon thread, for processes without an HTTP server (pricing workers).

    ``port=0`` picks a free port (``server.server_port``). Stop with ``server.shutdown()``;
    ``server.server_close()``. Binds ``127.0.0.1`` by default like the admin listener: pass
    ``addr="0.0.0.0"`` where Prometheus scrapes from another host. ``health`` maps probe paths
    (``/healthz``, ``/readyz``) to checks: 200 ``ok`` when a check returns None, else 503 with its
    reason. The checks run on this server's thread, so they must only read state the process's own
    loop keeps current — which is what lets a liveness check see that loop stall.
    """
    exposed = registry if registry is not None else metrics_registry()
    if not health:
        return _start_http_server(port, addr=addr, registry=exposed)
    app = _with_health(make_wsgi_app(exposed), dict(health))
    server = make_server(addr, port, app, _ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    return server, thread


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds: no access log line for each."""


_WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _with_health(app: _WsgiApp, checks: dict[str, HealthCheck]) -> _WsgiApp:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        check = checks.get(environ.get("PATH_INFO", ""))
        if check is None:
            return app(environ, start_response)
        problem = check()
        body = (problem or "ok").encode() + b"\n"
        start_response("200 OK" if problem is None else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                        ("Cache-Control", "no-store")])
        return [body]

    return serve


def reset_multiprocess_dir(path: str | Path) -> Path:
    """Empty (or create) the multiprocess directory: stale files from a previous run would add up."""
    directory = Path(path)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def mark_process_dead(pid: int, path: str | Path | None = None) -> None:
    """Drop the live-gauge files of exited worker ``pid`` (its counters and histograms stay summed)."""
    _multiprocess.mark_process_dead(pid, str(path) if path is not None else None)  # type: ignore[no-untyped-call]
