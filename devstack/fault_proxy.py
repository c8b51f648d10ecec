"""A small fault-injecting TCP proxy: latency on the way back from a legacy instance.

The chaos harness (``python -m loadtests.chaos``) puts one between a sidecar and its MES
(``Platform.sidecar_upstreams``) to make the MES *answer slowly* without touching it::

    proxy = FaultProxy(upstream_port=9101).start()     # listens on proxy.port, in a thread
    proxy.delay = 1.5                                  # every chunk MES → sidecar waits 1.5 s
    proxy.delay = 0.0                                  # healed
    proxy.stop()

Why not ``tc netem``: it needs ``CAP_NET_ADMIN`` and acts on a whole interface (``lo``), so it
would slow every agent sharing this machine's loopback, not one MES; a proxy in user space
delays exactly one legacy instance and needs no privileges.

The delay applies to each chunk the upstream sends back (a response is at least one chunk), in
order; the client → upstream direction is passed through at once. Connections are never
dropped by the proxy itself: a closed side closes the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from devstack.ports import free_port

CHUNK = 65536


class FaultProxy:
    """``127.0.0.1:port`` → ``127.0.0.1:upstream_port`` with an adjustable response delay."""

    def __init__(self, upstream_port: int, *, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        #: seconds each upstream → client chunk is held back (read by the proxy on every chunk)
        self.delay = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", self.port), self._loop)
        self._server = future.result(timeout=10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            server = self._server
            self._server = None

            async def close() -> None:
                server.close()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()  # the upstream refuses: so does the proxy (the sidecar sees a reset)
            return
        pumps = asyncio.gather(self._pump(client_r, upstream_w, slow=False),
                               self._pump(upstream_r, client_w, slow=True), return_exceptions=True)
        try:
            await pumps
        except asyncio.CancelledError:
            pumps.cancel()  # the proxy stops: both directions end with it
            await asyncio.gather(pumps, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if slow and self.delay > 0:
                    await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
