"""No cross-tenant oracle in the quote API: a partner cannot learn that another partner quoted
the same model (issue 12, point 7; docs/security.md).

Black box: a real ``python -m gateway`` process, the session Redis, the pricing worker in this
loop. Partner A quotes a model and it is priced; partner B then uploads the same bytes (and a
geometric copy): B's answers must look exactly like a first-ever quote — 202, not priced, its
own computation, no ``cached``/``shared_with`` — while the internal listener keeps the hints.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from legacy_sim.pricing.samples import box_stl_binary, box_triangles
from tests.integration.legacy_adapters.pricing_support import LOCAL, ROOT, geometric_copy, stl_of, wait_until
from tests.support.gateway import GatewayUnderTest, gateway_config, gateway_process
from tests.support.partner_edge import PEPPER, api_keys_section, make_keys

STL = {"Content-Type": "model/stl"}
DEDUP_HINTS = ("cached", "shared_with")
MODEL = box_stl_binary(7, 8, 9)
STORE_BUDGET = 1 << 20  # quotes.model_store_bytes: every stored (queued) model together


def _big_model(x: float) -> bytes:
    """A valid ~600 KB binary STL (a box's triangles 1000 times): more than half the store budget."""
    return stl_of(np.tile(box_triangles(x, 20, 30), (1000, 1, 1)))


@asynccontextmanager
async def _edge(tmp_path: Path, redis_url: str, **quotes: Any
                ) -> AsyncIterator[tuple[GatewayUnderTest, list[str]]]:
    store, keys = make_keys(tmp_path, *((p, "gold", ("quotes:read", "quotes:write"))
                                        for p in ("acme", "globex", "initech")))
    cfg = gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
                 "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 2 * STORE_BUDGET,
                 "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}},
                {"name": "quotes", "listener": "internal", "prefix": "/quotes", "methods": ["GET", "POST"],
                 "handler": "quotes", "max_body_bytes": 4096}],
        api_keys=api_keys_section(store),
        quotes={"redis_url": redis_url, "probe_interval": 0.2, **quotes})
    async with gateway_process(cfg, tmp_path) as gw:
        yield gw, keys


@pytest.fixture
async def edge(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[GatewayUnderTest, list[str]]]:
    async with _edge(tmp_path, redis_url) as gw_keys:
        yield gw_keys


@pytest.fixture
async def small_store_edge(tmp_path: Path, redis_url: str
                           ) -> AsyncIterator[tuple[GatewayUnderTest, list[str]]]:
    async with _edge(tmp_path, redis_url, model_store_bytes=STORE_BUDGET) as gw_keys:
        yield gw_keys


@asynccontextmanager
async def _pricing_worker(redis_url: str) -> AsyncIterator[PricingQueue]:
    """A pricing worker running in this loop inside the block."""
    queue = PricingQueue.from_url(redis_url)
    await queue.ensure_group()
    stop = asyncio.Event()
    task = asyncio.create_task(QuoteWorker(queue, CallableBackend(LOCAL),
                                           WorkerSettings(name="oracle-test", block_ms=100)).run(stop))
    try:
        yield queue
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await queue.aclose()


@pytest.fixture
async def worker(redis_url: str) -> AsyncIterator[PricingQueue]:
    """The pricing worker running in this loop while the test runs."""
    async with _pricing_worker(redis_url) as queue:
        yield queue


async def _quote(s: aiohttp.ClientSession, gw: GatewayUnderTest, key: str, model: bytes
                 ) -> tuple[int, dict[str, Any]]:
    async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=model,
                      headers={**STL, "Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.json()


async def _until_done(s: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal job
        async with s.get(url, headers=headers) as resp:
            assert resp.status == 200
            job = await resp.json()
        return bool(job["status"] == "done")

    await wait_until(done, 20, f"job {url} done")
    return job


async def test_partner_answers_carry_no_hint_that_another_partner_quoted_the_same_model(
        edge: tuple[GatewayUnderTest, list[str]], redis_url: str) -> None:
    gw, (acme, globex, initech) = edge
    async with aiohttp.ClientSession() as s:
        async with _pricing_worker(redis_url):
            status, first = await _quote(s, gw, acme, MODEL)
            assert status in (200, 202)  # (a fast worker may have priced it before the answer was read)
            priced = await _until_done(s, f"{gw.external}{first['location']}",
                                       {"Authorization": f"Bearer {acme}"})

        # no worker now, so nothing races the answers: globex uploads the same bytes, initech the
        # same geometry (shuffled, translated) — each gets exactly what a first-ever quote gets
        answers = []
        for key, model in ((globex, MODEL), (initech, geometric_copy(7, 8, 9))):
            status, answer = await _quote(s, gw, key, model)
            assert (status, answer["status"], answer["price"]) == (202, "queued", None)
            assert not set(DEDUP_HINTS) & set(answer)
            answers.append((key, answer))

        async with _pricing_worker(redis_url):
            for key, answer in answers:
                done = await _until_done(s, f"{gw.external}{answer['location']}",
                                         {"Authorization": f"Bearer {key}"})
                assert not set(DEDUP_HINTS) & set(done)
                assert done["attempts"] == 1  # its own computation, not another partner's result
                assert done["price"] == priced["price"]
                async with s.get(f"{gw.internal}/quotes/{answer['id']}") as resp:
                    assert (await resp.json())["cached"] is None  # operators: not shared either


async def test_operators_still_see_dedup_hints_of_a_partners_own_repeat_quote(
        edge: tuple[GatewayUnderTest, list[str]], worker: PricingQueue) -> None:
    gw, (acme, _, _) = edge
    auth = {"Authorization": f"Bearer {acme}"}
    async with aiohttp.ClientSession() as s:
        _, first = await _quote(s, gw, acme, MODEL)
        await _until_done(s, f"{gw.external}{first['location']}", auth)
        status, again = await _quote(s, gw, acme, MODEL)  # its own earlier quote: priced at once
        assert (status, again["status"]) == (200, "done")
        assert not set(DEDUP_HINTS) & set(again)
        async with s.get(f"{gw.external}{again['location']}", headers=auth) as resp:
            assert not set(DEDUP_HINTS) & set(await resp.json())
        async with s.get(f"{gw.internal}/quotes/{again['id']}") as resp:
            internal = await resp.json()
    assert internal["cached"] == "exact"


async def test_a_full_model_store_answers_alike_whether_or_not_another_partner_has_the_model_queued(
        small_store_edge: tuple[GatewayUnderTest, list[str]]) -> None:
    """No worker runs: queued models stay stored. acme's big model fills more than half the store;
    globex uploading the very same bytes must get what any other model of that size gets (503),
    not a 202 that says "these bytes are already stored: someone has this file queued"."""
    gw, (acme, globex, _) = small_store_edge
    queued, other = _big_model(10), _big_model(11)
    async with aiohttp.ClientSession() as s:
        status, _ = await _quote(s, gw, acme, queued)
        assert status == 202
        answers = []
        for model in (queued, other):
            async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=model,
                              headers={**STL, "Authorization": f"Bearer {globex}"}) as resp:
                answers.append((resp.status, (await resp.json(content_type=None)).get("type")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 503


def test_no_partner_can_be_named_like_the_owner_of_operators_jobs(tmp_path: Path) -> None:
    """Operators' quote jobs are owned by ``internal``: a partner of that name would read them."""
    done = subprocess.run([sys.executable, "-m", "gateway.api_keys", "--store", str(tmp_path / "k.json"),
                           "create", "--partner", "internal", "--tier", "gold", "--scopes", "quotes:read"],
                          env={**os.environ, "GATEWAY_API_KEY_PEPPER": PEPPER}, capture_output=True,
                          text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert "reserved" in done.stderr
    assert not (tmp_path / "k.json").exists()
