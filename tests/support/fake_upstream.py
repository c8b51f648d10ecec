"""A small real aiohttp app standing in for a cluster endpoint in tests.

    async with fake_upstream() as up:        # listening on 127.0.0.1:<ephemeral>
        up.url                                # "http://127.0.0.1:41234"
        up.set_healthy(False)                 # /healthz now answers 503
        up.hits                               # requests served, health probes excluded

Routes (any method):
  /status/{code}           answer with that status
  /slow?seconds=S          answer 200 after S seconds
  /echo                    JSON {method, path, path_qs, headers, body}
  /drip?chunks=N&interval=S  200 with headers at once, then N chunks S seconds apart
  /hang                    never answers (until the server stops)
  /healthz                 200 or 503, see set_healthy / /admin/health/{up|down}
"""

from __future__ import annotations

import asyncio
from collections import Counter
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["FakeUpstream", "fake_upstream"]


class FakeUpstream:
    """A fake endpoint on an ephemeral port; start/stop it or use ``async with``."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.healthy = True
        #: Requests served, excluding /healthz and /admin/*.
        self.hits = 0
        #: Same, by path (without query string).
        self.hits_by_path: Counter[str] = Counter()
        #: /healthz probes received.
        self.health_checks = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (valid after ``start``)."""
        return f"http://{self.host}:{self.port}"

    def set_healthy(self, healthy: bool) -> None:
        """Make /healthz answer 200 (True) or 503 (False)."""
        self.healthy = healthy

    async def start(self) -> FakeUpstream:
        """Listen on an ephemeral port."""
        app = web.Application()
        app.middlewares.append(self._count)
        app.router.add_route("*", "/status/{code:\\d{3}}", self._status)
        app.router.add_route("*", "/slow", self._slow)
        app.router.add_route("*", "/echo", self._echo)
        app.router.add_route("*", "/drip", self._drip)
        app.router.add_route("*", "/hang", self._hang)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/admin/health/{state:up|down}", self._admin_health)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop listening and close connections; hanging handlers are released first."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            self.health_checks += 1
        elif not request.path.startswith("/admin/"):
            self.hits += 1
            self.hits_by_path[request.path] += 1
        return await handler(request)

    async def _status(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=int(request.match_info["code"]), text=f"status from {self.url}")

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("seconds", "1")))
        return web.Response(text="slow")

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "path_qs": request.path_qs,
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
                "served_by": self.url,
            }
        )

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        chunks = int(request.query.get("chunks", "10"))
        interval = float(request.query.get("interval", "0.1"))
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(chunks):
                await response.write(b"x" * 16)
                try:
                    await asyncio.wait_for(self._stopping.wait(), interval)
                    break
                except TimeoutError:
                    pass
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up mid-body (what deadline tests provoke)
        return response

    async def _hang(self, request: web.Request) -> web.Response:
        await self._stopping.wait()
        return web.Response(status=503, text="stopped")

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503, text="ok" if self.healthy else "down")

    async def _admin_health(self, request: web.Request) -> web.Response:
        self.set_healthy(request.match_info["state"] == "up")
        return web.Response(text=request.match_info["state"])


def fake_upstream(*, host: str = "127.0.0.1") -> FakeUpstream:
    """A not-yet-started fake endpoint, meant for ``async with fake_upstream() as up``."""
    return FakeUpstream(host=host)
