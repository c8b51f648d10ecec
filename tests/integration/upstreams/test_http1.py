"""The gateway's upstream HTTP/1.1 client against real sockets.

Well-behaved exchanges run against the aiohttp fake upstream; framing edge cases
and misbehaving endpoints against scripted raw TCP servers that answer exactly the
bytes a test gives them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import uvloop

from gateway.upstreams.http1 import HIGH_WATER, Pool, Response
from gateway.upstreams.transport import (
    ConnectError,
    PayloadError,
    ProtocolError,
    ReadTimeout,
    ServerDisconnected,
)
from tests.support.fake_upstream import FakeUpstream, fake_upstream

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[str]:
    """A TCP server running ``script`` per connection; yields its base URL."""
    connections: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            await script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answer(*responses: bytes, close: bool = False) -> Script:
    """Per request on the connection, send the next of ``responses``; then close if asked."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            await read_head(reader)
            writer.write(response)
            await writer.drain()
        if close:
            return
        await reader.read()  # keep the connection until the client closes it

    return script


@asynccontextmanager
async def pool_for(url: str, *, limit: int = 8, keepalive: float = 30.0) -> AsyncIterator[Pool]:
    pool = Pool(url, limit=limit, keepalive_timeout=keepalive)
    try:
        yield pool
    finally:
        await pool.aclose()


async def get(pool: Pool, path: str = "/", *, method: str = "GET", headers: dict[str, str] | None = None,
              body: bytes | None = None, read_timeout: float | None = 5.0) -> tuple[Response, bytes]:
    resp = await pool.send(method, path, headers or {}, body, connect_timeout=2.0, read_timeout=read_timeout)
    try:
        return resp, await resp.read()
    finally:
        resp.release()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


# ---------------------------------------------------------------- well-behaved exchanges


async def test_request_line_headers_and_body_arrive_as_sent(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        resp, body = await get(pool, "/echo?a=1&b=%20x", method="POST",
                               headers={"X-Request-ID": "r-1", "Content-Type": "text/plain"}, body=b"hello")
    echoed = json.loads(body)
    assert resp.status == 200
    assert echoed["method"] == "POST"
    assert echoed["path_qs"] == "/echo?a=1&b=%20x"
    assert echoed["body"] == "hello"
    assert echoed["headers"]["X-Request-ID"] == "r-1"
    assert echoed["headers"]["Content-Length"] == "5"
    assert echoed["headers"]["Host"] == upstream.url.removeprefix("http://")
    # nothing of our own beyond Host and the framing
    assert "User-Agent" not in echoed["headers"]
    assert "Accept-Encoding" not in echoed["headers"]


async def test_keep_alive_connection_is_reused(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        for _ in range(5):
            resp, _ = await get(pool, "/status/200")
            assert resp.status == 200
        assert pool.open_connections == 1
        assert pool.idle_connections == 1


async def test_post_without_body_sends_content_length_zero(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        _, body = await get(pool, "/echo", method="POST")
    assert json.loads(body)["headers"]["Content-Length"] == "0"


async def test_streamed_request_body_is_sent_chunked(upstream: FakeUpstream) -> None:
    async def source() -> AsyncIterator[bytes]:
        for part in (b"abc", b"", b"defg", b"h" * 100_000):
            yield part

    async with pool_for(upstream.url) as pool:
        resp = await pool.send("PUT", "/echo", {}, source(), connect_timeout=2, read_timeout=5)
        try:
            echoed = json.loads(await resp.read())
        finally:
            resp.release()
    assert echoed["headers"]["Transfer-Encoding"] == "chunked"
    assert echoed["body"] == "abcdefg" + "h" * 100_000


async def test_failing_body_source_raises_its_own_error() -> None:
    class ClientWentAway(Exception):
        pass

    async def source() -> AsyncIterator[bytes]:
        yield b"first"
        raise ClientWentAway

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(script) as url, pool_for(url) as pool:
        with pytest.raises(ClientWentAway):
            await pool.send("POST", "/", {}, source(), connect_timeout=2, read_timeout=5)
        assert pool.open_connections == 0


async def test_early_response_during_upload_is_returned() -> None:
    """An endpoint may answer (413) before reading the whole body; the answer wins."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
        await writer.drain()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0.01)

    async with raw_server(script) as url, pool_for(url) as pool:
        resp = await pool.send("POST", "/", {}, endless(), connect_timeout=2, read_timeout=5)
        try:
            assert resp.status == 413
            assert await resp.read() == b"big"
        finally:
            resp.release()
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0  # the upload was abandoned with the connection


async def test_chunked_response_streams_in_pieces(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        resp = await pool.send("GET", "/drip?chunks=3&interval=0.05", {}, None, connect_timeout=2,
                               read_timeout=5)
        try:
            assert resp.content_length is None
            pieces = [chunk async for chunk in resp.iter_any()]
        finally:
            resp.release()
        assert len(pieces) >= 2
        assert pool.idle_connections == 1  # a fully read chunked response keeps the connection


async def test_response_headers_keep_repeats_and_order() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing: caf\xc3\xa9\r\nSet-Cookie: b=2\r\n"
           b"Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n\r\n{}")
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        resp, body = await get(pool)
    assert resp.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert resp.headers["X-Thing"] == "café"
    assert resp.content_type == "application/json"
    assert resp.reason == "OK"
    assert body == b"{}"


# ---------------------------------------------------------------- framing edge cases


async def test_head_response_with_length_does_not_wait_for_a_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        resp, body = await asyncio.wait_for(get(pool, method="HEAD"), 5)
    assert resp.status == 200
    assert body == b""
    assert resp.content_length == 1000


@pytest.mark.parametrize("status", [204, 304])
async def test_bodyless_statuses_complete_and_keep_the_connection(status: int) -> None:
    raw = f"HTTP/1.1 {status} X\r\n\r\n".encode()
    async with raw_server(answer(raw, raw)) as url, pool_for(url) as pool:
        for _ in range(2):
            resp, body = await asyncio.wait_for(get(pool), 5)
            assert resp.status == status
            assert body == b""
        assert pool.open_connections == 1


async def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        resp, body = await get(pool, method="POST", body=b"x")
    assert resp.status == 201
    assert body == b"ok"


async def test_body_until_close_is_read_to_the_end_and_not_reused() -> None:
    raw = b"HTTP/1.1 200 OK\r\n\r\nall of it"
    async with raw_server(answer(raw, close=True)) as url, pool_for(url) as pool:
        _resp, body = await get(pool)
        assert body == b"all of it"
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0


async def test_connection_close_response_is_not_reused() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    async with raw_server(answer(raw, raw)) as url, pool_for(url) as pool:
        await get(pool)
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0


async def test_unread_response_closes_its_connection(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        resp = await pool.send("GET", "/drip?chunks=5&interval=0.05", {}, None, connect_timeout=2,
                               read_timeout=5)
        resp.release()
        resp.release()  # idempotent
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0


# ---------------------------------------------------------------- failures


async def test_refused_connection_is_a_connect_error() -> None:
    async with raw_server(answer()) as url:
        pass  # closed again: nothing listens on that port now
    async with pool_for(url) as pool:
        with pytest.raises(ConnectError) as err:
            await get(pool)
    assert isinstance(err.value.os_error, ConnectionRefusedError)
    assert pool.open_connections == 0


async def test_no_response_headers_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(silent) as url, pool_for(url) as pool:
        with pytest.raises(ReadTimeout):
            await get(pool, read_timeout=0.2)
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0


async def test_stalled_body_is_a_read_timeout() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        resp = await pool.send("GET", "/", {}, None, connect_timeout=2, read_timeout=0.2)
        try:
            with pytest.raises(ReadTimeout):
                async for _ in resp.iter_any():
                    pass
        finally:
            resp.release()


async def test_truncated_body_is_a_payload_error() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    async with raw_server(answer(raw, close=True)) as url, pool_for(url) as pool:
        with pytest.raises(PayloadError):
            await get(pool)


async def test_garbage_is_a_protocol_error() -> None:
    async with raw_server(answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as url, pool_for(url) as pool:
        with pytest.raises(ProtocolError):
            await get(pool)


async def test_oversized_response_head_is_a_protocol_error() -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(100))
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        with pytest.raises(ProtocolError, match="response head larger than"):
            await get(pool)
        await asyncio.sleep(0.05)
        assert pool.open_connections == 0


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 204 " + b"r" * 200_000 + b"\r\n\r\n",                    # endless reason phrase
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * 2_000_000 + b"\r\n\r\n",     # one huge field value
])
async def test_head_limit_holds_for_one_huge_field(raw: bytes) -> None:
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        with pytest.raises(ProtocolError, match="response head larger than"):
            await get(pool)


async def test_unsolicited_bytes_on_an_idle_connection_close_it() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(ok)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(ok)  # an answer to nothing
        await writer.drain()
        await reader.read()

    async with raw_server(chatty) as url, pool_for(url) as pool:
        await get(pool)
        assert pool.idle_connections == 1
        await asyncio.sleep(0.2)
        assert pool.open_connections == 0
        _resp, body = await get(pool)  # a fresh connection, in step again
        assert body == b"ok"


async def test_close_before_headers_is_server_disconnected() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)

    async with raw_server(rude) as url, pool_for(url) as pool:
        with pytest.raises(ServerDisconnected):
            await get(pool)


class OneThenDrop:
    """Answers the first request of each connection, then drops the connection on the next one
    unanswered: what a client sees when the endpoint closed an idle keep-alive connection just
    as the request went out."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        self.requests += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_head(reader)
        self.requests += 1


async def test_stale_keep_alive_connection_is_replaced_for_idempotent_requests() -> None:
    server = OneThenDrop()
    async with raw_server(server) as url, pool_for(url) as pool:
        await get(pool)
        resp, body = await get(pool)  # dropped on the reused connection, replayed on a fresh one
        assert (resp.status, body) == (200, b"ok")
    assert server.requests == 3


async def test_stale_connection_is_not_replayed_for_post() -> None:
    server = OneThenDrop()
    async with raw_server(server) as url, pool_for(url) as pool:
        await get(pool, method="POST", body=b"1")
        with pytest.raises(ServerDisconnected):
            await get(pool, method="POST", body=b"2")
    assert server.requests == 2  # sent once, never replayed


async def test_connection_found_closing_is_not_written_and_any_method_goes_on_a_fresh_one(
    upstream: FakeUpstream,
) -> None:
    async with pool_for(upstream.url) as pool:
        await get(pool, "/echo", method="POST", body=b"1")
        (idle,) = pool._idle
        assert idle.transport is not None
        # what the transport does when the endpoint's FIN arrives (eof_received returns None):
        # it is closing, and connection_lost comes on a later loop iteration
        idle.transport.close()
        resp, _body = await get(pool, "/echo", method="POST", body=b"2")
        assert resp.status == 200
        assert pool.stale_replays == 1
    assert upstream.hits == 2  # nothing was written on the closing connection: each POST once


async def test_header_injection_is_refused_before_sending(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        with pytest.raises(ValueError, match="CR or LF"):
            await get(pool, headers={"X-Evil": "a\r\nX-Injected: 1"})
    assert upstream.hits == 0


# ---------------------------------------------------------------- limits and flow control


async def test_pool_limit_queues_requests(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url, limit=2) as pool:
        peak = 0

        async def one() -> None:
            nonlocal peak
            resp = await pool.send("GET", "/slow?seconds=0.05", {}, None, connect_timeout=2, read_timeout=5)
            peak = max(peak, pool.open_connections)
            try:
                await resp.read()
            finally:
                resp.release()

        await asyncio.gather(*(one() for _ in range(8)))
        assert peak <= 2
        assert pool.open_connections == 2


async def test_slow_consumer_pauses_reading() -> None:
    size = 8 * HIGH_WATER
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"z" * size
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        resp = await pool.send("GET", "/", {}, None, connect_timeout=2, read_timeout=5)
        try:
            await asyncio.sleep(0.2)  # the endpoint would send everything now if we let it
            assert resp.buffered_bytes <= 2 * HIGH_WATER
            received = 0
            async for chunk in resp.iter_any():
                received += len(chunk)
            assert received == size
        finally:
            resp.release()


async def test_closing_the_pool_cuts_requests_in_flight(upstream: FakeUpstream) -> None:
    pool = Pool(upstream.url, limit=4, keepalive_timeout=30)
    task = asyncio.ensure_future(get(pool, "/hang"))
    await asyncio.sleep(0.1)
    await pool.aclose()
    with pytest.raises(ServerDisconnected):
        await asyncio.wait_for(task, 5)



# ---------------------------------------------------------------- regressions from review


async def test_trailers_never_leak_into_the_next_response() -> None:
    first = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Set-Cookie\r\n\r\n"
             b"2\r\nhi\r\n0\r\nSet-Cookie: session=victim\r\nX-Checksum: abc\r\n\r\n")
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(answer(first, second)) as url, pool_for(url) as pool:
        resp1, body1 = await get(pool)
        resp2, body2 = await get(pool)
    assert (body1, body2) == (b"hi", b"ok")
    assert "Set-Cookie" not in resp1.headers  # trailers are not forwarded at all
    assert list(resp2.headers.items()) == [("Content-Length", "2")]
    assert pool.connects == 1


async def test_connection_paused_by_a_full_buffer_is_resumed_before_reuse() -> None:
    size = HIGH_WATER + 1
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"b" * size
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(answer(big, ok)) as url, pool_for(url) as pool:
        resp = await pool.send("GET", "/", {}, None, connect_timeout=2, read_timeout=2)
        while not resp.complete:  # the whole body is buffered (reading paused) before we consume it
            await asyncio.sleep(0.01)
        try:
            assert len(await resp.read()) == size
        finally:
            resp.release()
        _, body = await get(pool, read_timeout=2)
    assert body == b"ok"
    assert pool.connects == 1


async def test_read_returns_bodies_larger_than_the_buffer_limit() -> None:
    size = 4 * HIGH_WATER
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"r" * size
    async with raw_server(answer(raw)) as url, pool_for(url) as pool:
        _, body = await get(pool, read_timeout=2)
    assert len(body) == size


async def test_body_until_close_cut_by_the_gateway_is_not_reported_complete() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npart-1;")
        await writer.drain()
        await reader.read()

    async with raw_server(trickle) as url:
        pool = Pool(url, limit=2, keepalive_timeout=30)
        resp = await pool.send("GET", "/", {}, None, connect_timeout=2, read_timeout=5)
        received: list[bytes] = []

        async def consume() -> None:
            async for chunk in resp.iter_any():
                received.append(chunk)
                await pool.aclose()  # e.g. a reload retiring the cluster

        with pytest.raises(PayloadError, match="cut by the gateway"):
            await consume()
        resp.release()
    assert received == [b"part-1;"]


async def test_a_second_response_to_one_request_is_never_handed_to_the_next() -> None:
    """Extra bytes after a complete response (the head of an unsolicited one, e.g. the answer
    to a smuggled request) must not be parsed into the next request's response."""

    async def double(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmine"
                     b"HTTP/1.1 200 OK\r\nX-Stray: yes\r\nContent-Length: 5\r\n")  # unfinished
        await writer.drain()
        while True:
            await read_head(reader)
            writer.write(b"\r\nstray" b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nyours!")
            await writer.drain()

    async with raw_server(double) as url, pool_for(url, limit=1) as pool:
        resp = await pool.send("GET", "/a", {}, None, connect_timeout=2, read_timeout=2)
        assert await resp.read() == b"mine"
        await asyncio.sleep(0.05)  # the stray head arrives while the first response is held
        resp.release()
        resp2, body2 = await get(pool, "/b", read_timeout=2)
    assert "X-Stray" not in resp2.headers
    assert body2 != b"stray"
    assert pool.connects == 2  # the poisoned connection was closed, not reused


async def test_slow_upload_longer_than_the_read_timeout_is_not_a_timeout(upstream: FakeUpstream) -> None:
    async def slow_source() -> AsyncIterator[bytes]:
        for _ in range(5):
            await asyncio.sleep(0.1)
            yield b"x" * 100

    async with pool_for(upstream.url) as pool:
        resp = await pool.send("POST", "/echo", {}, slow_source(), connect_timeout=2, read_timeout=0.25)
        try:
            assert json.loads(await resp.read())["body"] == "x" * 500
        finally:
            resp.release()


@pytest.mark.parametrize("loop_runner", ["asyncio", "uvloop"])
def test_connect_cancelled_after_the_socket_is_up_frees_its_slot_once(
        monkeypatch: pytest.MonkeyPatch, loop_runner: str) -> None:
    """The overall deadline may fire between connection_made and create_connection returning
    (uvloop then closes the transport without calling connection_lost)."""
    from gateway.upstreams import http1

    original = http1._Connection.connection_made

    async def scenario() -> None:
        task: asyncio.Future[Response] | None = None

        def connection_made(self: http1._Connection, transport: asyncio.BaseTransport) -> None:
            original(self, transport)
            assert task is not None
            task.cancel()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        async with raw_server(silent) as url, pool_for(url, limit=1) as pool:
            monkeypatch.setattr(http1._Connection, "connection_made", connection_made)
            task = asyncio.ensure_future(pool.send("GET", "/", {}, None, connect_timeout=2, read_timeout=1))
            with pytest.raises(asyncio.CancelledError):
                await task
            monkeypatch.setattr(http1._Connection, "connection_made", original)
            await asyncio.sleep(0.05)
            assert pool.open_connections == 0
            for _ in range(3):  # the single slot is usable again, and only one
                with pytest.raises(ReadTimeout):
                    await get(pool, read_timeout=0.05)
                assert pool.open_connections <= 1

    (uvloop.run if loop_runner == "uvloop" else asyncio.run)(scenario())


async def test_transfer_coding_other_than_chunked_reads_until_close() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nopaque-gzip-bytes"
    async with raw_server(answer(raw, close=True)) as url, pool_for(url) as pool:
        _, body = await get(pool)
    assert body == b"opaque-gzip-bytes"


async def test_caller_framing_headers_are_replaced_by_ours(upstream: FakeUpstream) -> None:
    async with pool_for(upstream.url) as pool:
        _, body = await get(pool, "/echo", method="POST", body=b"12345",
                            headers={"Content-Length": "1", "Transfer-Encoding": "chunked",
                                     "Host": "evil.example", "X-Keep": "yes"})
    echoed = json.loads(body)
    assert echoed["body"] == "12345"
    assert echoed["headers"]["Content-Length"] == "5"
    assert "Transfer-Encoding" not in echoed["headers"]
    assert echoed["headers"]["Host"] == upstream.url.removeprefix("http://")
    assert echoed["headers"]["X-Keep"] == "yes"


@pytest.mark.parametrize(("path", "headers"), [
    ("/a b", {}),
    ("/a\x00b", {}),
    ("no-slash", {}),
    ("/", {"Transfer-Encoding ": "chunked"}),
    ("/", {"X-A: b": "c"}),
    ("/", {"": "empty"}),
])
async def test_unsafe_request_heads_are_refused(upstream: FakeUpstream, path: str,
                                                headers: dict[str, str]) -> None:
    async with pool_for(upstream.url) as pool:
        with pytest.raises(ValueError, match="invalid"):
            await get(pool, path, headers=headers)
    assert upstream.hits == 0
