"""Admin listener (default 127.0.0.1:9112): ``/metrics``, ``/healthz``, ``/readyz``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from sidecar.config import SidecarConfig
from telemetry.metrics import metrics_handler


class Readiness:
    """``/readyz`` state: draining flag and a cached check of the legacy instance."""

    def __init__(self, config: SidecarConfig, status: Callable[[], dict[str, object]] | None = None) -> None:
        self.config = config
        self.draining = False
        self.status = status or dict
        self._checked_at = 0.0
        self._last: tuple[bool, str] = (False, "not checked yet")

    async def upstream_ok(self, session: aiohttp.ClientSession) -> tuple[bool, str]:
        """GET the legacy's health path (1 s), cached for 1 s so probes cannot hammer it."""
        if time.monotonic() - self._checked_at < 1.0:
            return self._last
        url = self.config.upstream_base + self.config.health_path
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
                self._last = (resp.status < 500, f"{self.config.health_path} answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._last = (False, f"{self.config.health_path} unreachable: {type(exc).__name__}")
        self._checked_at = time.monotonic()
        return self._last


READINESS = web.AppKey("readiness", Readiness)
_ADMIN_SESSION = web.AppKey("admin_session", aiohttp.ClientSession)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    ok, detail = await readiness.upstream_ok(request.app[_ADMIN_SESSION])
    if readiness.draining:
        ok, detail = False, "draining"
    body = {"status": "ready" if ok else "not ready", "upstream": detail, **readiness.status()}
    return web.json_response(body, status=200 if ok else 503)


async def _admin_session_ctx(app: web.Application) -> AsyncIterator[None]:
    app[_ADMIN_SESSION] = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
    yield
    await app[_ADMIN_SESSION].close()


def build_admin_app(readiness: Readiness) -> web.Application:
    """``/metrics``, ``/healthz`` (the process), ``/readyz`` (the legacy answers, not draining)."""
    app = web.Application()
    app[READINESS] = readiness
    app.cleanup_ctx.append(_admin_session_ctx)
    app.router.add_get("/metrics", metrics_handler())
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app
