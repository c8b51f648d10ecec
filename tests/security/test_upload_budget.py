"""Slow uploads cannot hold unbounded gateway memory: each quote upload reserves its size from a
per-process and a per-partner budget before its body is read, and the whole body must arrive
within ``quotes.upload_deadline`` (gateway/quotes/upload_budget.py; docs/security.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from legacy_adapters.job_view import PARTNER_ERROR, job_json
from tests.security.edge_support import raw_exchange
from tests.security.upload_support import PROBLEM, boxes_stl, metric, quote_gateway

pytestmark = pytest.mark.timeout(60)
MiB = 1 << 20


def _head(path: str, key: str, length: int) -> bytes:
    return (f"POST {path}?material=PLA HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\n"
            f"Content-Type: model/stl\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n").encode()


async def _open_upload(base: str, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sent its headers and a first byte, then holds the rest back."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + b"\0")
    await writer.drain()
    return reader, writer


async def _until(gw_admin_metric: Callable[[], Awaitable[float]], want: float) -> None:
    async with asyncio.timeout(15):
        while await gw_admin_metric() < want:
            await asyncio.sleep(0.05)


async def test_a_partner_holding_its_share_of_upload_bytes_gets_429_and_others_still_upload(
        tmp_path: Path, redis_url: str) -> None:
    async with quote_gateway(tmp_path, redis_url, upload_partner_bytes=MiB,
                             upload_bytes=4 * MiB) as (gw, key):
        _, writer = await _open_upload(gw.external, _head("/partner/v1/quotes", key, 900_000))
        try:
            await _until(lambda: metric(gw, "gateway_upload_bytes_in_flight"), 900_000)
            status, headers, body = await raw_exchange(
                gw.external, _head("/partner/v1/quotes", key, 900_000) + b"\0" * 900_000)
            assert status == 429, body[:200]
            assert headers["content-type"] == PROBLEM
            assert json.loads(body)["type"].endswith("/uploads-in-progress")
            assert "retry-after" in headers
            assert await metric(gw, "gateway_upload_refusals_total", reason="partner_budget") == 1
            # operators (internal listener) are not that partner: their upload goes through
            model = boxes_stl(2)
            status, _, body = await raw_exchange(gw.internal, _head("/quotes", "", len(model)) + model)
            assert status == 202, body[:200]
        finally:
            writer.close()


async def test_an_upload_that_trickles_past_the_deadline_is_408_and_its_bytes_are_released(
        tmp_path: Path, redis_url: str) -> None:
    async with quote_gateway(tmp_path, redis_url, upload_deadline=1) as (gw, key):
        reader, writer = await _open_upload(gw.external, _head("/partner/v1/quotes", key, 1000))
        try:
            answer = await _trickle_until_answered(reader, writer)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert await metric(gw, "gateway_upload_refusals_total", reason="deadline") == 1
        await _until(lambda: _negated(metric(gw, "gateway_upload_bytes_in_flight")), 0)


async def _negated(value: Awaitable[float]) -> float:
    return -(await value)


async def _trickle_until_answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One byte every 0.2 s (well inside the idle body_timeout) until the gateway answers."""
    for _ in range(150):
        with contextlib.suppress(ConnectionError):
            writer.write(b"\0")
            await writer.drain()
        try:
            data = await asyncio.wait_for(reader.read(65536), 0.2)
        except TimeoutError:
            continue
        return data  # the status line is in the first bytes of the answer
    return b""


def test_a_failed_jobs_error_detail_is_for_operators_only() -> None:
    job = {"id": "j1", "status": "failed", "owner": "acme",
           "error": "gave up after 1 attempts: legacy pricing unreachable: Cannot connect to 10.1.2.3:8000"}
    assert job_json(job, location="/partner/v1/quotes/j1")["error"] == PARTNER_ERROR
    assert "10.1.2.3" in job_json(job, location="/quotes/j1", audience="operator")["error"]
