"""The Prometheus registry convention: which registry a process exposes, and how.

* **Per-process** (default): metrics live in ``prometheus_client.REGISTRY`` and the process
  exposes them itself — on its aiohttp admin app (:func:`metrics_handler`/:func:`metrics_app`) or,
  without HTTP, on a small thread server (:func:`start_metrics_server`).
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
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import start_http_server as _start_http_server

__all__ = ["MULTIPROC_DIR_ENV", "mark_process_dead", "metrics_app", "metrics_handler", "metrics_registry",
           "reset_multiprocess_dir", "start_metrics_server"]

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


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


def start_metrics_server(port: int, *, addr: str = "127.0.0.1",
                         registry: CollectorRegistry | None = None) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` from a daemon thread, for processes without an HTTP server (pricing workers).

    ``port=0`` picks a free port (``server.server_port``). Stop with ``server.shutdown()``;
    ``server.server_close()``. Binds ``127.0.0.1`` by default like the admin listener: pass
    ``addr="0.0.0.0"`` where Prometheus scrapes from another host.
    """
    exposed = registry if registry is not None else metrics_registry()
    return _start_http_server(port, addr=addr, registry=exposed)


def reset_multiprocess_dir(path: str | Path) -> Path:
    """Empty (or create) the multiprocess directory: stale files from a previous run would add up."""
    directory = Path(path)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def mark_process_dead(pid: int, path: str | Path | None = None) -> None:
    """Drop the live-gauge files of exited worker ``pid`` (its counters and histograms stay summed)."""
    _multiprocess.mark_process_dead(pid, str(path) if path is not None else None)  # type: ignore[no-untyped-call]
