"""A lean pooled HTTP/1.1 client for the proxy's upstream side (llhttp via ``httptools``).

Why not aiohttp's ``ClientSession``: on the proxy's hot path it cost ~80 µs of CPU per
request on the 2-core reference box (URL and header merging, per-request timer
contexts, trace hooks, cookie and redirect machinery a reverse proxy never uses);
this client does one ``transport.write`` per request and parses the response with the
same C parser family (llhttp) as Node.js, ~3x cheaper (``bench/README.md``).

Scope, deliberately small: HTTP/1.1 keep-alive connections to one endpoint
(``http`` or ``https``), request bodies as ``bytes`` (Content-Length) or an async
iterable (chunked, written by a task so an early response is still read), responses
streamed with flow control, a per-read idle timeout (headers, then between body
chunks) and a connect timeout. No redirects, cookies, proxies, decompression or
pipelining. ``Endpoint pool`` = ``Pool``; ``send`` returns a ``Response`` whose
``release()`` puts the connection back when the exchange completed cleanly.

Errors: ``ConnectError`` (``ConnectTimeout``), ``ReadTimeout``, ``ServerDisconnected``,
``ProtocolError``, ``PayloadError`` -- all ``ClientError``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, cast

import httptools
from multidict import CIMultiDict
from yarl import URL

__all__ = [
    "ClientError",
    "ConnectError",
    "ConnectTimeout",
    "PayloadError",
    "Pool",
    "ProtocolError",
    "ReadTimeout",
    "Response",
    "ServerDisconnected",
]

#: Methods sent without ``Content-Length: 0`` when they carry no body (as aiohttp and curl do).
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "CONNECT", "TRACE"})
#: Response head (status line + headers) larger than this is refused (as aiohttp's 8 KiB per
#: field, with room for many fields): a misbehaving endpoint cannot grow our memory.
MAX_HEAD_BYTES = 64 * 1024
#: Buffered response bytes above which the socket stops being read until the consumer catches up.
HIGH_WATER = 256 * 1024
_LOW_WATER = HIGH_WATER // 4


class ClientError(Exception):
    """Base of every error this client raises."""


class ConnectError(ClientError):
    """The TCP (or TLS) connection could not be opened; ``os_error`` says why."""

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        super().__init__(message)
        self.os_error = os_error


class ConnectTimeout(ConnectError, TimeoutError):
    """The connection was not established within the connect timeout."""


class ReadTimeout(ClientError, TimeoutError):
    """No response bytes within the read timeout (headers, or between body chunks)."""


class ServerDisconnected(ClientError):
    """The endpoint closed the connection before the response was complete."""


class ProtocolError(ClientError):
    """The endpoint sent something that is not valid HTTP/1.1."""


class PayloadError(ClientError):
    """The response body ended early or was malformed."""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class Response:
    """Status, headers and the streamed body of one upstream response.

    ``read()`` returns the whole body; ``iter_any()`` yields chunks as they arrive
    (each wait bounded by the read timeout). ``release()`` must be called (the
    cluster does it): a fully read response returns its connection to the pool, any
    other state closes it.
    """

    __slots__ = (
        "_chunks", "_conn", "_eof", "_error", "_released", "_size", "_waiter",
        "headers", "reason", "status",
    )

    def __init__(self, conn: _Connection, status: int, reason: str, headers: CIMultiDict[str]) -> None:
        self._conn: _Connection | None = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False

    @property
    def content_length(self) -> int | None:
        """The Content-Length header as an int, or None (chunked, or read until close)."""
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``application/octet-stream`` if absent)."""
        value = self.headers.get("Content-Type")
        if value is None:
            return "application/octet-stream"
        return value.partition(";")[0].strip().lower()

    # ---------------------------------------------------------------- fed by the connection

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and self._conn is not None:
            self._conn.pause_reading()
        self._wake()

    def _finish(self, error: BaseException | None = None) -> None:
        if self._eof:
            return
        self._eof = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ---------------------------------------------------------------- the consumer's side

    async def _wait(self) -> None:
        conn = self._conn
        if conn is None:
            raise PayloadError("response already released")
        self._waiter = waiter = conn.loop.create_future()
        conn.resume_reading()
        timer = conn.arm_timer(waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        return data

    async def read(self) -> bytes:
        """The whole body (waits for the end of the message)."""
        while not self._eof:
            await self._wait()
        if self._error is not None:
            raise self._error
        return self._take() if self._chunks else b""

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Yield the body in the chunks it arrives in, until the end of the message."""
        while True:
            if self._chunks:
                yield self._take()
                continue
            if self._eof:
                if self._error is not None:
                    raise self._error
                return
            await self._wait()

    def release(self) -> None:
        """Give the connection back (complete, keep-alive) or close it (anything else). Idempotent."""
        if self._released:
            return
        self._released = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.done(reusable=self._eof and self._error is None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes requests, parses responses with llhttp."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = 0  # requests sent on this connection
        self._parser = httptools.HttpResponseParser(self)
        self._read_timeout: float | None = None
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._reason = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._busy = False  # between exchange() and done(): a response is expected or in progress
        self._keep_alive = False
        self._skip_body = False  # HEAD: llhttp would wait for Content-Length bytes that never come
        self._until_close = False  # no length, not chunked: the body ends with the connection
        self._paused_reading = False
        self._writable: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._writer: asyncio.Task[None] | None = None
        self._got_bytes = False
        self.forgotten = False  # Pool.forget ran (the slot is freed exactly once)

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self._busy:  # bytes on an idle connection: nobody asked, and the framing is lost
            self.abort()
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the endpoint switched protocols (upgrade is not proxied)"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self._response
        if response is not None and not response._eof:
            if self._until_close and exc is None:
                response._finish()
                self._keep_alive = False
            else:
                reason = exc or "closed"
                response._finish(PayloadError(f"response body incomplete: connection lost ({reason})"))
        head = self._head
        if head is not None and not head.done():
            head.set_exception(ServerDisconnected(
                f"server disconnected before the response headers{f': {exc}' if exc else ''}"
            ))
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self.pool.forget(self)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # ---------------------------------------------------------------- llhttp callbacks

    def on_status(self, status: bytes) -> None:
        self._reason += status  # llhttp may deliver the reason phrase in pieces
        self._head_bytes += len(status)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES} bytes")
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        raw, self._raw_headers = self._raw_headers, []
        reason, self._reason = self._reason, b""
        self._head_bytes = 0
        if 100 <= status < 200:
            return  # interim (100 Continue, 103 Early Hints): wait for the final response
        headers: CIMultiDict[str] = CIMultiDict([(_decode(k), _decode(v)) for k, v in raw])
        self._keep_alive = parser.should_keep_alive()
        self._until_close = (
            "Content-Length" not in headers and "Transfer-Encoding" not in headers
            and status not in (204, 304) and not self._skip_body
        )
        response = Response(self, status, _decode(reason), headers)
        self._response = response
        if self._skip_body:
            response._finish()
            self._keep_alive = False  # the parser still expects a body: never reuse
        head = self._head
        if head is not None and not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        response = self._response
        if response is not None and not self._skip_body:
            response._feed(body)

    def on_message_complete(self) -> None:
        response = self._response
        if response is not None:
            response._finish()

    # ---------------------------------------------------------------- used by Response / Pool

    def pause_reading(self) -> None:
        if not self._paused_reading and self.transport is not None:
            self._paused_reading = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused_reading and self.transport is not None and not self.closed:
            response = self._response
            if response is None or response._size <= _LOW_WATER:
                self._paused_reading = False
                self.transport.resume_reading()

    def arm_timer(self, waiter: asyncio.Future[Any]) -> asyncio.TimerHandle | None:
        """Fail ``waiter`` with ``ReadTimeout`` (and close) if it is still pending after the read timeout."""
        if self._read_timeout is None:
            return None
        return self.loop.call_later(self._read_timeout, self._on_read_timeout, waiter)

    def _on_read_timeout(self, waiter: asyncio.Future[Any]) -> None:
        if waiter.done():
            return
        error = ReadTimeout(f"no data from the endpoint within {self._read_timeout} s")
        if self._response is not None:
            self._response._finish(error)
        else:
            waiter.set_exception(error)
        self.abort()

    def _fail(self, error: ClientError) -> None:
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
        elif self._response is not None:
            self._response._finish(PayloadError(str(error)))
        self.abort()

    def abort(self) -> None:
        self._keep_alive = False
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def done(self, *, reusable: bool) -> None:
        """The response was released: back to the pool if clean and keep-alive, else close."""
        self._busy = False
        self._response = None
        self._head = None
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            reusable = False
            writer.cancel()
        if reusable and self._keep_alive and not self.closed:
            self.pool.put_back(self)
        else:
            self.abort()
            self.pool.forget(self)

    # ---------------------------------------------------------------- one exchange

    async def exchange(self, head: bytes, body: bytes | AsyncIterable[bytes] | None,
                       read_timeout: float | None, skip_body: bool) -> Response:
        self.used += 1
        self._busy = True
        self._read_timeout = read_timeout
        self._skip_body = skip_body
        self._got_bytes = False
        future: asyncio.Future[Response] = self.loop.create_future()
        self._head = future
        transport = self.transport
        assert transport is not None
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
        else:
            transport.write(head)
            self._writer = self.loop.create_task(self._write_chunked(body, future))
        timer = self.arm_timer(future)
        try:
            return await future
        except BaseException:
            self.done(reusable=False)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if self._head is future:
                self._head = None

    async def _write_chunked(self, body: AsyncIterable[bytes], head: asyncio.Future[Response]) -> None:
        transport = self.transport
        assert transport is not None
        try:
            async for chunk in body:
                if not chunk:
                    continue
                if self.closed:
                    return
                transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                if self._paused_writing:
                    self._writable = self.loop.create_future()
                    await self._writable
            if not self.closed:
                transport.write(b"0\r\n\r\n")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the body's source failed: the request cannot complete
            if not head.done():
                head.set_exception(exc)
            self.abort()


class Pool:
    """Keep-alive connections to one endpoint (base URL), at most ``limit`` open at a time."""

    def __init__(self, base_url: str, *, limit: int, keepalive_timeout: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.loop = asyncio.get_running_loop()
        self.host = url.host
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        self._prefix = url.raw_path.rstrip("/")
        self._host_line = f"Host: {url.raw_authority}\r\n"
        self.limit = limit
        self.keepalive_timeout = keepalive_timeout
        self._idle: list[_Connection] = []
        self._conns: set[_Connection] = set()  # every open connection, idle or in use
        self._open = 0  # idle + in use + connecting
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        #: Connections opened and stale keep-alive replays since start (read by metrics).
        self.connects = 0
        self.stale_replays = 0

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    def _request_head(self, method: str, path_qs: str, headers: Mapping[str, str],
                      body: bytes | AsyncIterable[bytes] | None) -> bytes:
        parts = [f"{method} {self._prefix}{path_qs} HTTP/1.1\r\n", self._host_line]
        parts += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if isinstance(body, bytes):
            parts.append(f"Content-Length: {len(body)}\r\n")
        elif body is not None:
            parts.append("Transfer-Encoding: chunked\r\n")
        elif method not in _NO_BODY_METHODS:
            parts.append("Content-Length: 0\r\n")
        parts.append("\r\n")
        text = "".join(parts)
        if text.count("\n") != len(parts) or text.count("\r") != len(parts):
            raise ValueError("CR or LF inside a request line, header name or value")
        return text.encode("utf-8", "surrogateescape")

    async def send(self, method: str, path_qs: str, headers: Mapping[str, str],
                   body: bytes | AsyncIterable[bytes] | None, *,
                   connect_timeout: float | None, read_timeout: float | None) -> Response:
        """Send one request; the caller must ``release()`` the returned ``Response``.

        A kept-alive connection that the endpoint had already closed (the classic
        keep-alive race: nothing came back at all) is replaced by a fresh one once,
        when the request can be replayed (idempotent method, no streamed body).
        """
        head = self._request_head(method, path_qs, headers, body)
        skip_body = method == "HEAD"
        replayable = method in _NO_BODY_METHODS and not (body is not None and not isinstance(body, bytes))
        while True:
            conn = await self._acquire(connect_timeout)
            try:
                return await conn.exchange(head, body, read_timeout, skip_body)
            except ServerDisconnected:
                if conn.used > 1 and not conn._got_bytes and replayable:
                    self.stale_replays += 1
                    continue  # stale keep-alive connection: try a fresh one
                raise

    async def _acquire(self, connect_timeout: float | None) -> _Connection:
        if self._closed:
            raise ConnectError(f"pool for {self.host}:{self.port} is closed")
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and self.loop.time() - conn.idle_since < self.keepalive_timeout:
                return conn
            conn.abort()
            self.forget(conn)
        while self._open >= self.limit:
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake_one()  # we were woken but will not use the slot
                raise
            if idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn
                self.forget(conn)
        self._open += 1
        try:
            return await self._connect(connect_timeout)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    async def _connect(self, connect_timeout: float | None) -> _Connection:
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"connect to {where} timed out after {connect_timeout} s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}", exc) from exc
        self._conns.add(conn)
        self.connects += 1
        return conn

    def put_back(self, conn: _Connection) -> None:
        if self._closed:
            conn.abort()
            return
        conn.idle_since = self.loop.time()
        self._idle.append(conn)
        self._wake_one()

    def forget(self, conn: _Connection) -> None:
        """A connection closed: drop it from the idle list and free its slot (once)."""
        if conn.forgotten:
            return
        conn.forgotten = True
        self._conns.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection; requests still in flight see their connection cut."""
        self._closed = True
        self._idle.clear()
        for conn in list(self._conns):
            conn.abort()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectError(f"pool for {self.host}:{self.port} closed"))
        self._waiters.clear()
