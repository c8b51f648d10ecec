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
