"""The minimal RESP2 pipe: encoding, parsing partial replies, pipelining on uvloop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from devstack import RedisServer
from gateway.ratelimit.pipe import RespError, RespPipe, _parse, encode


def test_encode_is_an_array_of_bulk_strings() -> None:
    assert encode("EVALSHA", "ab", 2) == b"*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n"


@pytest.mark.parametrize(("wire", "value"), [
    (b":42\r\n", 42), (b"+OK\r\n", "OK"), (b"$3\r\nabc\r\n", b"abc"), (b"$-1\r\n", None),
    (b"*3\r\n:1\r\n:-5\r\n:1000\r\n", [1, -5, 1000])])
def test_parse_complete_replies_and_wait_for_incomplete_ones(wire: bytes, value: object) -> None:
    assert _parse(bytearray(wire), 0) == (value, len(wire))
    assert _parse(bytearray(wire[:-1]), 0) is None


def test_error_reply_becomes_resp_error() -> None:
    parsed = _parse(bytearray(b"-NOSCRIPT No matching script\r\n"), 0)
    assert parsed is not None
    assert isinstance(parsed[0], RespError)


def test_pipelined_calls_on_uvloop_get_their_own_replies(tmp_path: Path) -> None:
    async def scenario(url: str) -> list[object]:
        pipe = RespPipe(url, timeout=1.0)
        try:
            return list(await asyncio.gather(*(pipe.call(encode("INCRBY", "n", i)) for i in range(1, 51))))
        finally:
            pipe.close()

    with RedisServer(tmp_path / "redis") as server:
        replies = uvloop.run(scenario(server.url))
    assert replies == [i * (i + 1) // 2 for i in range(1, 51)]


async def test_unreachable_redis_fails_fast_with_a_connection_error() -> None:
    from devstack.ports import free_port

    pipe = RespPipe(f"redis://127.0.0.1:{free_port()}/0", timeout=0.1)
    with pytest.raises(ConnectionRefusedError):
        await pipe.call(encode("PING"))


async def test_a_call_right_after_a_timeout_waits_on_a_new_connection_not_the_aborted_one() -> None:
    """A timeout aborts the connection; a caller that comes before the loop has reported the loss
    must not be queued on it and fail with "connection lost" — on a slow box that turned a late
    reply into ``reason="connection"``, the reason GatewayRateLimitBackendUnreachable pages on."""
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept_and_never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = RespPipe(f"redis://127.0.0.1:{port}/0", timeout=0.05)
    try:
        with pytest.raises(TimeoutError):
            await pipe.call(encode("PING"))
        with pytest.raises(TimeoutError):  # its own deadline on a fresh connection
            await pipe.call(encode("PING"))
        assert len(silent) == 2
    finally:
        pipe.close()
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()
