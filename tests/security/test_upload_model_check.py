"""Hostile STL models (issue 12, point 6): parsing happens in a model-check process with CPU-time
and memory limits, ASCII STL has a size cap, every model a triangle cap; a check that dies on its
limits is a 422 and the next upload is checked by a fresh process.

Black box: a real ``python -m gateway`` process, the session Redis. How fast the answers come
and what other requests see meanwhile is measured by ``bench/hostile_upload.py``, not here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from legacy_sim.pricing.samples import box_stl_binary, box_triangles
from tests.integration.legacy_adapters.pricing_support import wait_until
from tests.security.upload_support import (
    PROBLEM,
    STL,
    ascii_stl,
    boxes_stl,
    boxes_triangles,
    metric,
    quote_gateway,
)

PATHOLOGICAL = b"solid facet\n" + b"\n" * (20 << 20)  # numpy-stl: ~4 s of Python per 20 MiB


async def _post(url: str, body: bytes, headers: dict[str, str] = STL
                ) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as s, \
            s.post(f"{url}?material=PLA", data=body, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.json()


async def test_pathological_ascii_body_is_a_422_from_the_ascii_size_cap(
        tmp_path: Path, redis_url: str) -> None:
    async with quote_gateway(tmp_path, redis_url, max_body_bytes=64 << 20) as (gw, _):
        status, ctype, problem = await _post(f"{gw.internal}/quotes", PATHOLOGICAL)
        assert (status, ctype) == (422, PROBLEM)
        assert "ASCII STL" in problem["detail"]
        assert await metric(gw, "gateway_model_checks_total", outcome="invalid") == 1


async def test_ascii_stl_above_the_size_cap_is_refused_even_when_valid(
        tmp_path: Path, redis_url: str) -> None:
    model = ascii_stl(box_triangles(10, 10, 10))
    async with quote_gateway(tmp_path, redis_url, ascii_max_bytes=len(model) - 1) as (gw, _):
        status, ctype, problem = await _post(f"{gw.internal}/quotes", model)
        assert (status, ctype) == (422, PROBLEM)
        assert "send binary STL" in problem["detail"]


async def test_model_with_more_triangles_than_the_cap_is_refused(tmp_path: Path, redis_url: str) -> None:
    async with quote_gateway(tmp_path, redis_url, max_triangles=100) as (gw, key):
        status, ctype, problem = await _post(f"{gw.external}/partner/v1/quotes", boxes_stl(10),
                                             {**STL, "Authorization": f"Bearer {key}"})
        assert (status, ctype) == (422, PROBLEM)
        assert "120 triangles" in problem["detail"]
        status, _, _ = await _post(f"{gw.external}/partner/v1/quotes", boxes_stl(8),
                                   {**STL, "Authorization": f"Bearer {key}"})
        assert status == 202


async def test_blank_lines_below_the_ascii_size_cap_are_a_422_without_parsing(
        tmp_path: Path, redis_url: str) -> None:
    body = ascii_stl(box_triangles(10, 10, 10)) + b"\n" * (4 << 20)  # under the 8 MiB default cap
    async with quote_gateway(tmp_path, redis_url, max_body_bytes=16 << 20) as (gw, _):
        status, ctype, problem = await _post(f"{gw.internal}/quotes", body)
        assert (status, ctype) == (422, PROBLEM)
        assert "lines per facet" in problem["detail"]


async def test_check_killed_by_its_cpu_limit_is_a_422_and_the_next_model_is_checked(
        tmp_path: Path, redis_url: str) -> None:
    heavy = ascii_stl(boxes_triangles(20_000))  # 240 000 real facets, ~40 MB: seconds of numpy-stl
    async with quote_gateway(tmp_path, redis_url, max_body_bytes=64 << 20, ascii_max_bytes=64 << 20,
                             parse_cpu_seconds=1, parse_workers=1) as (gw, _):
        status, ctype, problem = await _post(f"{gw.internal}/quotes", heavy)
        assert (status, ctype) == (422, PROBLEM)
        assert "limits" in problem["detail"]
        assert await metric(gw, "gateway_model_checks_total", outcome="limit") == 1
        assert await metric(gw, "gateway_model_check_restarts_total") == 1
        status, _, job = await _post(f"{gw.internal}/quotes", box_stl_binary())
        assert status == 202
        assert job["status"] == "queued"


async def test_check_that_runs_out_of_memory_is_a_422(tmp_path: Path, redis_url: str) -> None:
    big = boxes_stl(40_000)  # 480 000 triangles, 24 MB: the check needs ~300 MB more than idle
    async with quote_gateway(tmp_path, redis_url, max_body_bytes=32 << 20, parse_workers=1,
                             parse_memory_bytes=320 << 20) as (gw, _):
        status, ctype, problem = await _post(f"{gw.internal}/quotes", big)
        assert (status, ctype) == (422, PROBLEM)
        assert "limits" in problem["detail"]
        status, _, _ = await _post(f"{gw.internal}/quotes", box_stl_binary())
        assert status == 202


async def test_concurrent_uploads_beyond_the_pool_wait_for_a_check_process(
        tmp_path: Path, redis_url: str) -> None:
    models = [boxes_stl(2000 + i) for i in range(4)]  # distinct, ~1.2 MB each
    async with quote_gateway(tmp_path, redis_url, max_body_bytes=2 << 20, parse_workers=1) as (gw, _):
        answers = await asyncio.gather(*(_post(f"{gw.internal}/quotes", m) for m in models))
        assert [status for status, _, _ in answers] == [202] * 4
        assert await metric(gw, "gateway_model_checks_total", outcome="ok") == 4


async def test_check_that_outlives_parse_timeout_is_a_503_and_the_pool_recovers(
        tmp_path: Path, redis_url: str) -> None:
    heavy = ascii_stl(boxes_triangles(20_000))
    async with quote_gateway(tmp_path, redis_url, max_body_bytes=64 << 20, ascii_max_bytes=64 << 20,
                             parse_cpu_seconds=60, parse_timeout=1.5, parse_workers=1,
                             retry_after=4) as (gw, _):
        async with aiohttp.ClientSession() as s, \
                s.post(f"{gw.internal}/quotes?material=PLA", data=heavy, headers=STL) as resp:
            assert resp.status == 503
            assert resp.content_type == PROBLEM
            assert "Retry-After" in resp.headers
        assert await metric(gw, "gateway_model_checks_total", outcome="busy") == 1
        assert await metric(gw, "gateway_model_check_restarts_total") == 1

        async def accepted() -> bool:
            status, _, _ = await _post(f"{gw.internal}/quotes", box_stl_binary())
            return status == 202
        await wait_until(accepted, 30, "an upload accepted by the replaced check process")
