"""The Python ceiling: a bare aiohttp + uvloop pass-through proxy, no filters, no logging.

    python -m bench.bare_proxy --port 8080 --endpoint http://127.0.0.1:9001 [--workers 2]

One shared ClientSession per process, round-robin over the endpoints, the body
streamed, status and headers copied minus hop-by-hop ones. ``--workers N`` forks N
processes sharing the port with SO_REUSEPORT. ``--admin-port`` adds ``GET /readyz``.
``--client http1`` swaps the ClientSession for the gateway's own upstream client
(``gateway.upstreams.http1.Pool`` per endpoint): the same proxy, to price the client alone;
``--client-tree PATH`` imports that client from another checkout (``bench.proxy --tree``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping

import uvloop
from aiohttp import ClientSession, DummyCookieJar, TCPConnector, web
from multidict import CIMultiDict
from yarl import URL

# hop-by-hop headers (RFC 9110 7.6.1), plus Host: the client sets it for the endpoint
NOT_COPIED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)


def _end_to_end(headers: Mapping[str, str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in NOT_COPIED)


def _http1_handler(endpoints: list[str]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    from gateway.upstreams.http1 import Pool  # only this variant needs the project on the path

    next_pool = itertools.cycle([Pool(e, limit=256, keepalive_timeout=60.0) for e in endpoints]).__next__

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = request.content.iter_any() if request.body_exists else None
        upstream = await next_pool().send(request.method, request.raw_path, _end_to_end(request.headers),
                                          body, connect_timeout=5.0, read_timeout=30.0)
        try:
            response = web.StreamResponse(
                status=upstream.status, reason=upstream.reason, headers=_end_to_end(upstream.headers)
            )
            await response.prepare(request)
            async for chunk in upstream.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()

    return proxy


async def serve(port: int, endpoints: list[str], admin_port: int | None, client: str = "aiohttp") -> None:
    # no cookie jar: a proxy must not carry one client's cookies to another
    session = ClientSession(
        connector=TCPConnector(limit=256), auto_decompress=False, cookie_jar=DummyCookieJar()
    )
    next_endpoint = itertools.cycle(endpoints).__next__

    async def aiohttp_proxy(request: web.Request) -> web.StreamResponse:
        url = URL(next_endpoint() + request.raw_path, encoded=True)
        body = request.content if request.body_exists else None
        async with session.request(
            request.method,
            url,
            headers=_end_to_end(request.headers),
            data=body,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status, reason=upstream.reason, headers=_end_to_end(upstream.headers)
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def readyz(request: web.Request) -> web.Response:
        return web.Response(text="ready")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _http1_handler(endpoints) if client == "http1" else aiohttp_proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    admin_runner = None
    if admin_port is not None:
        admin = web.Application()
        admin.router.add_get("/readyz", readyz)
        admin_runner = web.AppRunner(admin, access_log=None)
        await admin_runner.setup()
        await web.TCPSite(admin_runner, "127.0.0.1", admin_port, reuse_port=True).start()

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    for r in (admin_runner, runner):
        if r is not None:
            await r.cleanup()
    await session.close()


def run_worker(port: int, endpoints: list[str], admin_port: int | None, client: str = "aiohttp") -> None:
    uvloop.run(serve(port, endpoints, admin_port, client))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--endpoint", action="append", required=True, help="repeatable")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--admin-port", type=int)
    parser.add_argument("--client", choices=("aiohttp", "http1"), default="aiohttp",
                        help="upstream client: aiohttp's ClientSession, or the gateway's http1.Pool")
    parser.add_argument("--client-tree", help="checkout to import the http1 client from (default: this one)")
    args = parser.parse_args(argv)
    if args.client_tree:
        sys.path.insert(0, args.client_tree)  # before the lazy `from gateway.upstreams.http1 import Pool`
    worker_args = (args.port, [e.rstrip("/") for e in args.endpoint], args.admin_port, args.client)
    if args.workers == 1:
        run_worker(*worker_args)
        return
    workers = [multiprocessing.Process(target=run_worker, args=worker_args) for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            worker.terminate()
            worker.join(5)


if __name__ == "__main__":
    main()
