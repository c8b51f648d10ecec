"""A minimal pipelined RESP2 connection for the one hot-path command (the multi-window script).

Measured on this box (``docs/partner-edge.md``): redis-py's asyncio client spends ~170 µs of
CPU per ``EVALSHA`` and ~110 µs per ``PING`` — more than half of the gateway's whole per-request
budget. The command of a (partner, route) plan never changes, so it is encoded once; a request
then costs one future and parsing a short integer array. Commands are pipelined on one
connection and replies matched first-in first-out; the commands of all requests that run in one
event-loop iteration leave in a single write (auto-pipelining, as ioredis does: at saturation
one syscall carries many requests' commands); any timeout or error closes
the connection (a late reply would otherwise be matched to the wrong request) and fails every
waiter, which sends the limiter to degraded mode. Everything else (heartbeat, probes) uses redis-py.

A new connection is private to its handshake (``AUTH``, ``SELECT``, ``CLIENT SETNAME`` from the
URL, pipelined in one write) until every handshake reply has been checked: only then is it
published for commands. A command written earlier would run unauthenticated or in db 0 (it
did, when callers that arrived during the ``AUTH`` round trip were sent straight away). A
refused handshake aborts the connection and fails every waiting caller (fail closed).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from redis.connection import parse_url


class RespError(Exception):
    """Redis answered with an error reply (``-ERR …``, ``-NOSCRIPT …``)."""


class HandshakeError(RespError):
    """``AUTH``/``SELECT``/``CLIENT SETNAME`` of a new connection was refused: it is not used."""


def encode(*parts: str | int | bytes) -> bytes:
    """One RESP2 command: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def handshake_commands(opts: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(name, encoded command) to run on every new connection, from ``parse_url`` options."""
    out = []
    if opts.get("password"):
        out.append(("AUTH", encode("AUTH", *filter(None, (opts.get("username"), opts["password"])))))
    if opts.get("db"):
        out.append(("SELECT", encode("SELECT", opts["db"])))
    if opts.get("client_name"):
        out.append(("CLIENT SETNAME", encode("CLIENT", "SETNAME", opts["client_name"])))
    return out


def _parse(buf: bytearray, pos: int) -> tuple[Any, int] | None:
    """One reply starting at ``pos`` → (value, next position), or None if incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line = buf[pos:pos + 1], bytes(buf[pos + 1:end])
    if kind == b":":
        return int(line), end + 2
    if kind == b"+":
        return line.decode(), end + 2
    if kind == b"-":
        return RespError(line.decode()), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2
        if len(buf) < end + 2 + size + 2:
            return None
        return bytes(buf[end + 2:end + 2 + size]), end + 4 + size
    if kind == b"*":
        items, at = [], end + 2
        for _ in range(max(0, int(line))):
            parsed = _parse(buf, at)
            if parsed is None:
                return None
            items.append(parsed[0])
            at = parsed[1]
        return items, at
    raise RespError(f"unexpected RESP reply type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.buf = bytearray()
        self.lost = False
        self.outbox: list[bytes] = []  # commands of this loop iteration, written by flush()

    def send(self, command: bytes, loop: asyncio.AbstractEventLoop) -> None:
        """Queue ``command`` for the single write at the end of this loop iteration."""
        if not self.outbox:
            loop.call_soon(self.flush)
        self.outbox.append(command)

    def flush(self) -> None:
        out, self.outbox = self.outbox, []
        if out and self.transport is not None and not self.lost:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        pos = 0
        while self.waiters:
            parsed = _parse(self.buf, pos)
            if parsed is None:
                break
            value, pos = parsed
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(value)
        del self.buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.fail(ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def fail(self, exc: BaseException) -> None:
        # aborted now, reported lost only on a later loop iteration: a caller in between must
        # take a new connection, not wait on this one for "connection lost" (not our timeout)
        self.lost = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class RespPipe:
    """``await call(encoded)`` → the reply; connects lazily, handshake from the URL first."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.opts: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.timeout = timeout
        self._handshake = handshake_commands(self.opts)
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def _connect(self) -> _Protocol:
        """A connection whose handshake succeeded; nothing else is written on it before that."""
        loop = asyncio.get_running_loop()
        proto: _Protocol | None = None
        try:
            async with asyncio.timeout(self.timeout):
                _, proto = await loop.create_connection(_Protocol, self.opts.get("host", "127.0.0.1"),
                                                        self.opts.get("port", 6379))
                if self._handshake:
                    waiters = [loop.create_future() for _ in self._handshake]
                    proto.waiters.extend(waiters)
                    assert proto.transport is not None
                    proto.transport.write(b"".join(command for _, command in self._handshake))
                    replies = await asyncio.gather(*waiters)
                    for (name, _), reply in zip(self._handshake, replies, strict=True):
                        if isinstance(reply, RespError) or reply != "OK":
                            raise HandshakeError(f"Redis refused {name}: {reply}")
        except BaseException as exc:
            if proto is not None:
                proto.fail(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            raise
        self._proto = proto  # published only now: every queued caller writes after the handshake
        return proto

    async def call(self, command: bytes) -> Any:
        proto = self._proto
        if proto is None or proto.lost:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
                self._connecting.add_done_callback(lambda _: setattr(self, "_connecting", None))
            proto = await asyncio.shield(self._connecting)
            if proto.lost:
                raise ConnectionError("Redis connection lost right after its handshake")
        assert proto.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        proto.waiters.append(waiter)
        proto.send(command, loop)
        timer = loop.call_later(self.timeout, proto.fail,
                                TimeoutError(f"no Redis reply within {self.timeout} s"))
        try:
            value = await waiter
        finally:
            timer.cancel()
        if isinstance(value, RespError):
            raise value
        return value

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
