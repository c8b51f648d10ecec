"""A lean pooled HTTP/1.1 client for the proxy's upstream side (llhttp via ``httptools``).

Why not aiohttp's ``ClientSession``: on the proxy's hot path it cost ~70 µs of CPU per
request on this 2-core box (URL and header merging, per-request timer
contexts, trace hooks, cookie and redirect machinery a reverse proxy never uses);
this client does one ``transport.write`` per request and parses the response with the
same C parser (llhttp) as Node.js: a bare proxy on it does 2x the requests per core
(``bench/README.md``, variant ``bare-http1``).

Scope, deliberately small: HTTP/1.1 keep-alive connections to one endpoint
(``http`` or ``https``), request bodies as ``bytes`` (Content-Length) or an async
iterable (chunked, written by a task so an early response is still read; the read
timeout starts once the upload is complete), responses streamed with flow control, a
per-read idle timeout (headers, then between body chunks) and a connect timeout. No
redirects, cookies, proxies, decompression, trailers (dropped) or pipelining.

Defences (each has a regression test in ``tests/integration/upstreams/test_http1.py``):
the pool writes ``Host`` and the body framing itself and drops the caller's; header names
must be tokens and nothing may contain CR/LF; the response head is capped at
``MAX_HEAD_BYTES``; bytes on an idle connection, or a second message after the final
response, close the connection instead of reaching the next request; a connection goes
back to the pool only after a complete, keep-alive response, never paused.

The cluster's transport (``gateway.upstreams.transport``): ``Pool`` is a ``Transport``, its
``Response`` an ``UpstreamResponse``, and it raises the transport's errors: ``ConnectError``
(``ConnectTimeout``), ``ReadTimeout``, ``ServerDisconnected``, ``ProtocolError``,
``PayloadError`` -- all ``TransportError``, translated by the cluster, never seen above it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, cast

import httptools
from multidict import CIMultiDict
from yarl import URL

from gateway.upstreams.transport import (
    ConnectError,
    ConnectTimeout,
    PayloadError,
    ProtocolError,
    ReadTimeout,
    ServerDisconnected,
    TransportError,
)

__all__ = ["HIGH_WATER", "MAX_HEAD_BYTES", "Pool", "Response"]

#: Methods sent without ``Content-Length: 0`` when they carry no body (as aiohttp and curl do).
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "CONNECT", "TRACE"})
#: Response head (status line + headers) larger than this is refused (as aiohttp's 8 KiB per
#: field, with room for many fields): a misbehaving endpoint cannot grow our memory.
MAX_HEAD_BYTES = 64 * 1024
#: Buffered response bytes above which the socket stops being read until the consumer catches up.
HIGH_WATER = 256 * 1024
_LOW_WATER = HIGH_WATER // 4


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
    def buffered_bytes(self) -> int:
        """Body bytes received and not yet consumed (reading pauses above ``HIGH_WATER``)."""
        return self._size

    @property
    def complete(self) -> bool:
        """True once the whole body has arrived (it may still be buffered, unread)."""
        return self._eof

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
        parts: list[bytes] = []
        while not self._eof:
            if self._chunks:
                parts.append(self._take())  # keeps the buffer low, so reading goes on
            await self._wait()
        if self._error is not None:
            raise self._error
        if self._chunks:
            parts.append(self._take())
        return parts[0] if len(parts) == 1 else b"".join(parts)

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
    """One keep-alive connection: writes requests, parses responses with llhttp.

    States: idle (in the pool, ``_busy`` false: any byte from the endpoint closes it), busy
    (``exchange`` ran; the head is awaited, then the body streams) and ``_final`` (the final
    response is complete: a further message start means the endpoint broke framing, so the
    connection is closed rather than handing that message to the next request).
    """

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
        self._head_timer: asyncio.TimerHandle | None = None
        self._response: Response | None = None
        self._reason = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._in_head = False  # between a message's start and its headers' end (not trailers)
        self._awaiting_head = False  # the final response's head has not been parsed yet
        self._head_seen = 0  # bytes received while awaiting the head (bounded by MAX_HEAD_BYTES)
        self._busy = False  # between exchange() and done(): a response is expected or in progress
        self._final = False  # the final response of this exchange is complete
        self._keep_alive = False
        self._skip_body = False  # HEAD: llhttp would wait for Content-Length bytes that never come
        self._until_close = False  # no length, not chunked: the body ends with the connection
        self._aborted = False  # we cut the connection (a clean-looking EOF is not the body's end)
        self._paused_reading = False
        self._writable: asyncio.Future[None] | None = None
        self._paused_writing = False
        self._writer: asyncio.Task[None] | None = None
        self._got_bytes = False

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.pool.register(self)

    def data_received(self, data: bytes) -> None:
        if not self._busy:  # bytes on an idle connection: nobody asked, and the framing is lost
            self.abort()
            return
        self._got_bytes = True
        awaiting = self._awaiting_head
        if awaiting:
            self._head_seen += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the endpoint switched protocols (upgrade is not proxied)"))
            return
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__  # raised by one of our callbacks
            self._fail(cause if isinstance(cause, TransportError)
                       else ProtocolError(f"invalid HTTP response: {exc}"))
            return
        if awaiting and self._awaiting_head and self._head_seen > MAX_HEAD_BYTES:
            # counted per read, not per header: httptools buffers a field until it is complete
            self._fail(ProtocolError(f"response head larger than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self._response
        if response is not None and not response._eof:
            if self._until_close and exc is None and not self._aborted:
                response._finish()  # the endpoint closed: that is where this body ends
                self._keep_alive = False
            else:
                reason = exc or ("cut by the gateway" if self._aborted else "closed by the endpoint")
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

    def on_message_begin(self) -> None:
        if self._final:
            # a second message after the final response: never hand it to the next request
            raise ProtocolError("the endpoint sent more than one response to one request")
        self._in_head = True
        self._reason = b""
        self._raw_headers = []

    def on_status(self, status: bytes) -> None:
        self._reason += status  # llhttp may deliver the reason phrase in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:  # trailer fields (after a chunked body) are dropped, never carried over
            self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        status = parser.get_status_code()
        raw, self._raw_headers = self._raw_headers, []
        reason, self._reason = self._reason, b""
        if 100 <= status < 200:
            return  # interim (100 Continue, 103 Early Hints): wait for the final response
        self._awaiting_head = False
        headers: CIMultiDict[str] = CIMultiDict([(_decode(k), _decode(v)) for k, v in raw])
        self._keep_alive = parser.should_keep_alive()
        coding = headers.get("Transfer-Encoding")
        chunked = coding is not None and coding.rsplit(",", 1)[-1].strip().lower() == "chunked"
        # RFC 9112 6.3: no length, or a transfer coding other than chunked last: read until close
        self._until_close = (
            not chunked and (coding is not None or "Content-Length" not in headers)
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
        if response is not None and not self._awaiting_head:
            self._final = True
            response._finish()

    # ---------------------------------------------------------------- used by Response / Pool

    def pause_reading(self) -> None:
        if not self._paused_reading and self.transport is not None:
            self._paused_reading = True
            self.transport.pause_reading()

    def resume_reading(self, *, force: bool = False) -> None:
        if self._paused_reading and self.transport is not None and not self.closed:
            response = self._response
            if force or response is None or response._size <= _LOW_WATER:
                self._paused_reading = False
                self.transport.resume_reading()

    def arm_timer(self, waiter: asyncio.Future[Any]) -> asyncio.TimerHandle | None:
        """Fail ``waiter`` with ``ReadTimeout`` (and close) if it is still pending after the read timeout."""
        if self._read_timeout is None:
            return None
        return self.loop.call_later(self._read_timeout, self._on_read_timeout, waiter)

    def _arm_head_timer(self, waiter: asyncio.Future[Response]) -> None:
        self._head_timer = self.arm_timer(waiter)

    def _on_read_timeout(self, waiter: asyncio.Future[Any]) -> None:
        if waiter.done():
            return
        error = ReadTimeout(f"no data from the endpoint within {self._read_timeout} s")
        if self._response is not None:
            self._response._finish(error)
        else:
            waiter.set_exception(error)
        self.abort()

    def _fail(self, error: TransportError) -> None:
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
            self._aborted = True
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
            if self._paused_reading:  # the last read filled the buffer and ended the message
                self.resume_reading(force=True)
            self.pool.put_back(self)
        else:
            self.abort()
            self.pool.forget(self)

    # ---------------------------------------------------------------- one exchange

    async def exchange(self, head: bytes, body: bytes | AsyncIterable[bytes] | None,
                       read_timeout: float | None, skip_body: bool) -> Response:
        self.used += 1
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            # the endpoint closed this connection (its FIN came while the connection sat idle):
            # nothing is written, so the request may be sent anywhere else, whatever its method
            self.done(reusable=False)
            raise ServerDisconnected("connection closed by the endpoint before the request was written",
                                     request_sent=False)
        self._busy = True
        self._final = False
        self._awaiting_head = True
        self._head_seen = 0
        self._read_timeout = read_timeout
        self._skip_body = skip_body
        self._got_bytes = False
        future: asyncio.Future[Response] = self.loop.create_future()
        self._head = future
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            self._arm_head_timer(future)
        else:  # the read timeout starts once the upload is complete (as aiohttp's sock_read)
            transport.write(head)
            self._writer = self.loop.create_task(self._write_chunked(body, future))
        try:
            return await future
        except BaseException:
            self.done(reusable=False)
            raise
        finally:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
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
                if not head.done():
                    self._arm_head_timer(head)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the body's source failed: the request cannot complete
            if not head.done():
                head.set_exception(exc)
            self.abort()


class Pool:
    """Keep-alive connections to one endpoint (base URL), at most ``limit`` open at a time.

    The pool owns the framing: ``Host``, ``Content-Length`` and ``Transfer-Encoding`` are
    written by ``send`` from the body, and the caller's own values of those are dropped.
    """

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
        self._conns: set[_Connection] = set()  # every connected connection, idle or in use
        self._connecting = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        #: Connections opened and stale keep-alive replays since start (read by metrics).
        self.connects = 0
        self.stale_replays = 0

    @property
    def open_connections(self) -> int:
        """Connections open or being opened (what ``limit`` bounds)."""
        return len(self._conns) + self._connecting

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    def _request_head(self, method: str, path_qs: str, headers: Mapping[str, str],
                      body: bytes | AsyncIterable[bytes] | None) -> bytes:
        if _BAD_TARGET.search(path_qs) is not None or not path_qs.startswith(("/", "*")):
            raise ValueError(f"invalid request target {path_qs[:80]!r}")
        parts = [f"{method} {self._prefix}{path_qs} HTTP/1.1\r\n", self._host_line]
        for name, value in headers.items():
            if name not in _GOOD_NAMES and not _check_name(name):
                continue  # framing is ours: the caller's Host/Content-Length/Transfer-Encoding
            parts.append(f"{name}: {value}\r\n")
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
        when the request can be replayed (idempotent method, no streamed body) or was not
        written at all (the connection was found closing: ``request_sent`` False, any method).
        ``ValueError`` for a request that cannot be written safely (CR/LF, bad names).
        """
        head = self._request_head(method, path_qs, headers, body)
        skip_body = method == "HEAD"
        replayable = method in _NO_BODY_METHODS and not (body is not None and not isinstance(body, bytes))
        while True:
            conn = await self._acquire(connect_timeout)
            try:
                return await conn.exchange(head, body, read_timeout, skip_body)
            except ServerDisconnected as exc:
                if conn.used > 1 and (not exc.request_sent or (replayable and not conn._got_bytes)):
                    self.stale_replays += 1
                    continue  # stale keep-alive connection: try a fresh one
                raise

    async def _acquire(self, connect_timeout: float | None) -> _Connection:
        while True:
            if self._closed:
                raise ConnectError(f"pool for {self.host}:{self.port} is closed")
            idle = self._idle
            while idle:
                conn = idle.pop()
                if not conn.closed and self.loop.time() - conn.idle_since < self.keepalive_timeout:
                    return conn
                conn.abort()
                self.forget(conn)
            if self.open_connections < self.limit:
                return await self._connect(connect_timeout)
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were woken but will not use the slot
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise

    async def _connect(self, connect_timeout: float | None) -> _Connection:
        where = f"{self.host}:{self.port}"
        self._connecting += 1
        made: list[_Connection] = []

        def factory() -> _Connection:
            made.append(conn := _Connection(self))
            return conn

        try:
            try:
                async with asyncio.timeout(connect_timeout):
                    _, conn = await self.loop.create_connection(
                        factory, self.host, self.port, ssl=self._ssl,
                        server_hostname=self.host if self._ssl is not None else None,
                    )
            except BaseException:
                # cancelled (or the TLS handshake failed) after connection_made: uvloop closes the
                # transport without connection_lost, so a registered connection is dropped here
                for orphan in made:
                    orphan.abort()
                    self.forget(orphan)
                raise
        except TimeoutError:
            raise ConnectTimeout(f"connect to {where} timed out after {connect_timeout} s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}", exc) from exc
        finally:
            self._connecting -= 1
            self._wake_one()  # a failed connect frees its slot; a successful one is in _conns now
        self.connects += 1
        return conn

    def register(self, conn: _Connection) -> None:
        """A connection is up (``connection_made``): it counts until ``forget``."""
        self._conns.add(conn)
        if self._closed:
            conn.abort()

    def put_back(self, conn: _Connection) -> None:
        if self._closed:
            conn.abort()
            return
        conn.idle_since = self.loop.time()
        self._idle.append(conn)
        self._wake_one()

    def forget(self, conn: _Connection) -> None:
        """A connection closed: drop it from the idle list and free its slot (once)."""
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        """Close every connection; requests still in flight see their connection cut, later
        ``send`` calls raise ``ConnectError``."""
        self._closed = True
        self._idle.clear()
        for conn in list(self._conns):
            conn.abort()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # wakes into the closed check of _acquire
        self._waiters.clear()


_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Framing headers only the pool writes (RFC 9112: a second Content-Length or a Transfer-Encoding
#: next to ours would be request smuggling material).
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
#: Header names already seen to be valid tokens (bounded; the hot path is a set lookup).
_GOOD_NAMES: set[str] = set()


def _check_name(name: str) -> bool:
    """True if ``name`` may be sent; False for framing headers; ValueError for invalid names."""
    if name.lower() in _FRAMING:
        return False
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid header name {name[:40]!r}")
    if len(_GOOD_NAMES) < 1024:
        _GOOD_NAMES.add(name)
    return True
