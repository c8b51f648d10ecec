"""The one request-id filter (gateway listeners, sidecars): who may choose the id, and where it goes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from telemetry.context import request_id_var
from telemetry.request_id import is_well_formed, new_request_id, request_id_filter

KEY = web.RequestKey("request_id", str)
NEW_ID = re.compile(r"^[0-9a-f]{32}$")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"key": request[KEY], "log_context": request_id_var.get()})


async def _streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b'{"streamed": true}')
    return response


async def _get(path: str, inbound: str, *, trust_inbound: bool) -> tuple[CIMultiDictProxy[str], Any]:
    """The answer's headers and JSON body for one GET with ``X-Request-ID: inbound``."""
    app = web.Application(middlewares=[request_id_filter(key=KEY, trust_inbound=trust_inbound)])
    app.router.add_get("/", _echo)
    app.router.add_get("/streamed", _streamed)
    async with TestClient(TestServer(app)) as client, \
            client.get(path, headers={"X-Request-ID": inbound}) as resp:
        return resp.headers, await resp.json(content_type=None)


async def test_a_trusted_well_formed_id_is_kept_on_the_request_in_the_log_context_and_answer() -> None:
    headers, body = await _get("/", "gw-req:0001.a_b", trust_inbound=True)
    assert body == {"key": "gw-req:0001.a_b", "log_context": "gw-req:0001.a_b"}
    assert headers["X-Request-ID"] == "gw-req:0001.a_b"
    assert request_id_var.get() is None  # the log context is reset after the request


@pytest.mark.parametrize("inbound", ["short", "x" * 129, "has space1", "semi;colon", "ünïcode-id"])
async def test_a_malformed_inbound_id_is_replaced_by_a_new_one(inbound: str) -> None:
    headers, body = await _get("/", inbound, trust_inbound=True)
    assert NEW_ID.match(body["key"])
    assert body["log_context"] == body["key"] == headers["X-Request-ID"]


async def test_without_trust_an_inbound_id_is_never_kept() -> None:
    headers, body = await _get("/", "spoofed-request-id", trust_inbound=False)
    assert NEW_ID.match(headers["X-Request-ID"])
    assert body["key"] == headers["X-Request-ID"]


async def test_a_streamed_answer_keeps_the_headers_it_sent() -> None:
    headers, body = await _get("/streamed", "stream-req-0001", trust_inbound=True)
    assert body == {"streamed": True}
    assert "X-Request-ID" not in headers  # its headers were on the wire before the filter saw it


def test_new_ids_are_32_hex_characters_and_differ() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(NEW_ID.match(rid) for rid in ids)


def test_well_formed_means_8_to_128_safe_characters() -> None:
    assert all(map(is_well_formed, ["a" * 8, "A-z_0.9:" * 16]))
    assert not any(map(is_well_formed, ["a" * 7, "a" * 129, ""]))
