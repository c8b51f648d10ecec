"""Hostile request bodies and parameters against the contract filter (``gateway/filters/contract.py``):
every one is a clear 4xx problem — never a 500, a hang or a request that reaches the MES.
A real ``python -m gateway`` process in front of a fake MES that counts what reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.security.edge_support import partner_edge, raw_exchange, read_problem
from tests.support.fake_upstream import FakeUpstream, fake_upstream

pytestmark = pytest.mark.timeout(90)
ORDER = (b'{"customer": "ACME", "material": "PLA", "quantity": 2, "model_name": "a.stl"')


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[tuple[Any, dict[str, str], FakeUpstream]]:
    async with fake_upstream() as mes, partner_edge(tmp_path, mes.url) as (gw, keys):
        yield gw, keys, mes


HOSTILE_BODIES = {
    "nested 16 000 deep": b"[" * 16_000,
    "nested 1000 deep inside a member": ORDER + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "an array of 8000 items": b"[" + b"0," * 7999 + b"0]",
    "a member twice": ORDER + b', "quantity": 99999999}',
    "a lone surrogate": b'{"customer": "\\ud800", "material": "PLA", "quantity": 2, "model_name": "a"}',
    "a 5000-digit number": ORDER.replace(b'"quantity": 2', b'"quantity": ' + b"9" * 5000) + b"}",
    "an infinite number": ORDER.replace(b'"quantity": 2', b'"quantity": 1e999') + b"}",
    "NaN": ORDER.replace(b'"quantity": 2', b'"quantity": NaN') + b"}",
    "not UTF-8": b'{"customer": "\xff\xfe", "material": "PLA", "quantity": 2, "model_name": "a"}',
    "UTF-16": '{"customer": "A"}'.encode("utf-16"),
    "oversize, announced": b"{" + b" " * 20_000 + b"}",
    "a NUL in a string": ORDER.replace(b'"ACME"', b'"AC\\u0000ME"') + b"}",
    "a bare string": b'"just a string"',
    "null": b"null",
    "trailing garbage": ORDER + b"} {}",
}


async def test_hostile_json_bodies_are_4xx_problems_and_never_reach_the_mes(edge: Any) -> None:
    gw, keys, mes = edge
    answers = {}
    async with aiohttp.ClientSession() as s:
        for name, data in HOSTILE_BODIES.items():
            async with s.post(f"{gw.external}/partner/v1/orders", data=data, headers={
                    "Authorization": f"Bearer {keys['acme']}", "Content-Type": "application/json"}) as r:
                body = await read_problem(r, r.status)
                answers[name] = (r.status, bool(body.get("invalid_params")) or r.status == 413)
    schema_violations = ("a NUL in a string", "a bare string", "null", "an array of 8000 items")
    assert answers == {name: (422 if name in schema_violations else 400, True)
                       for name in HOSTILE_BODIES} | {"oversize, announced": (413, True)}
    assert mes.hits == 0


async def test_a_body_in_a_media_type_the_operation_does_not_take_is_415(edge: Any) -> None:
    gw, keys, mes = edge
    async with aiohttp.ClientSession() as s:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                      "application/xml", "application/json-patch+json", None):
            headers = {"Authorization": f"Bearer {keys['acme']}"}
            if ctype is not None:
                headers["Content-Type"] = ctype
            async with s.post(f"{gw.external}/partner/v1/orders", data=ORDER + b"}", headers=headers,
                              skip_auto_headers=["Content-Type"]) as r:
                body = await read_problem(r, 415)
                assert "application/json" in body["detail"], ctype
    assert mes.hits == 0


async def test_an_oversize_body_is_413_whether_announced_or_chunked(edge: Any) -> None:
    gw, keys, mes = edge
    before = mes.hits
    auth = {"Authorization": f"Bearer {keys['acme']}", "Content-Type": "application/json"}
    big = ORDER + b', "x": "' + b"a" * 20_000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.external}/partner/v1/orders", data=big, headers=auth) as r:
            await read_problem(r, 413)
        async with s.post(f"{gw.external}/partner/v1/orders", data=chunks(), headers=auth) as r:
            await read_problem(r, 413)
    assert mes.hits == before


async def test_a_stalled_body_is_408_not_a_hang(tmp_path: Path) -> None:
    async with fake_upstream() as mes, partner_edge(tmp_path, mes.url) as (gw, keys):
        # the route's body_timeout (shipped 30 s) is far above this test: shorten it via the config?
        # No: send a Content-Length the body never reaches and close our side after a short wait —
        # the gateway must answer (408 on its timeout, or 400 when the connection ends), never 500.
        request = (f"POST /partner/v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys['acme']}\r\n"
                   "Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
                   '{"customer": ').encode()
        status, _, _ = await _half_sent(gw.external, request)
        assert status in (400, 408), status
        assert mes.hits == 0


async def _half_sent(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    import asyncio

    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        writer.write_eof()  # the rest of the announced body never comes
        data = await asyncio.wait_for(reader.read(-1), 20)
    finally:
        writer.close()
    if not data:
        return 400, {}, b""  # the gateway closed: nothing was forwarded, nothing crashed
    head = data.split(b"\r\n", 1)[0].decode()
    return int(head.split()[1]), {}, data


async def test_a_thousand_query_parameters_are_one_bounded_400(edge: Any) -> None:
    gw, keys, mes = edge
    before = mes.hits
    query = "&".join(f"p{i}=1" for i in range(1000))
    async with aiohttp.ClientSession() as s, s.get(f"{gw.external}/partner/v1/orders?{query}",
                                                   headers={"Authorization": f"Bearer {keys['acme']}"}) as r:
        body = await read_problem(r, 400)
        assert len(body["invalid_params"]) == 1000
        assert len(body["detail"]) <= 1000
    assert mes.hits == before


async def test_a_raw_request_with_a_json_body_on_a_read_is_400(edge: Any) -> None:
    gw, keys, mes = edge
    before = mes.hits
    body = b'{"a": 1}'
    status, _, _ = await raw_exchange(gw.external, (
        f"GET /partner/v1/orders/5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys['acme']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body)
    assert status == 400
    assert mes.hits == before
