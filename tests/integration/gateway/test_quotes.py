"""The quote job API on the real gateway: 202 + Location, validation before queueing, partner
isolation, idempotency, backpressure, webhooks (real Redis; the worker runs in this loop)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts.webhook_secrets import WebhookSecretStore
from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.callback_guard import PublicOnlyResolver
from legacy_adapters.consumer import QuoteWorker, WorkerSettings
from legacy_adapters.queue import PricingQueue
from legacy_adapters.queue_state import read_queue_state
from legacy_adapters.webhook_signing import verify
from legacy_adapters.webhooks import WebhookNotifier
from legacy_sim.pricing.samples import box_stl_binary, flat_stl_binary
from tests.integration.legacy_adapters.pricing_support import LOCAL, geometric_copy
from tests.support.gateway import GatewayUnderTest, gateway_config, run_gateway
from tests.support.partner_edge import api_keys_section, make_keys

STL = {"Content-Type": "model/stl"}


def _config(tmp_path: Path, redis_url: str, store: Path, *, bound: int = 100,
            allow_private_callbacks: bool = True) -> dict[str, Any]:
    return gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
                 "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 4096,
                 "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}},
                {"name": "quotes", "listener": "internal", "prefix": "/quotes", "methods": ["GET", "POST"],
                 "handler": "quotes", "max_body_bytes": 4096}],
        api_keys=api_keys_section(store),
        quotes={"redis_url": redis_url, "backlog_bound": bound, "retry_after": 7, "probe_interval": 0.2,
                # the test receivers listen on 127.0.0.1
                "allow_private_callbacks": allow_private_callbacks})


@pytest.fixture
async def edge(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[GatewayUnderTest, list[str]]]:
    store, keys = make_keys(tmp_path, ("acme", "gold", ("quotes:read", "quotes:write")),
                            ("globex", "gold", ("quotes:read", "quotes:write")))
    async with run_gateway(_config(tmp_path, redis_url, store), tmp_path) as gw:
        yield gw, keys


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[PricingQueue]:
    q = PricingQueue.from_url(redis_url)
    yield q
    await q.aclose()


async def _run_worker(queue: PricingQueue, until: asyncio.Event) -> None:
    worker = QuoteWorker(queue, CallableBackend(LOCAL), WorkerSettings(name="gw-test", block_ms=100))
    await worker.run(until)


async def test_submit_returns_202_location_and_the_job_reaches_done(
        edge: tuple[GatewayUnderTest, list[str]], queue: PricingQueue) -> None:
    gw, (acme, _) = edge
    auth = {"Authorization": f"Bearer {acme}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=box_stl_binary(),
                          headers={**STL, **auth}) as resp:
            assert resp.status == 202
            location = resp.headers["Location"]
            body = await resp.json()
        assert location == f"/partner/v1/quotes/{body['id']}"
        assert body["status"] == "queued"
        stop = asyncio.Event()
        worker = asyncio.create_task(_run_worker(queue, stop))
        try:
            for _ in range(200):
                async with s.get(f"{gw.external}{location}", headers=auth) as resp:
                    job = await resp.json()
                if job["status"] == "done":
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await worker
        assert job["price"] == "15.72"
        assert job["currency"] == "EUR"
        assert "cached" not in job  # dedup hints are operator-only (docs/pricing.md)
        assert job["breakdown"]["volume_mm3"] == 1000.0
        async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=geometric_copy(10, 10, 10),
                          headers={**STL, **auth}) as resp:
            assert resp.status == 200
            again = await resp.json()
        assert again["status"] == "done"
        assert "cached" not in again
        assert "shared_with" not in again
        assert again["price"] == "15.72"
        async with s.get(f"{gw.internal}/quotes/{again['id']}") as resp:
            assert (await resp.json())["cached"] == "geometric"  # operators see how it was priced


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b"solid nothing\nendsolid\n", STL, 422),
    (flat_stl_binary(), STL, 422),
    (box_stl_binary(), {"Content-Type": "text/plain"}, 415),
    (b"\0" * 5000, STL, 413),
])
async def test_unusable_uploads_are_refused_and_nothing_is_queued(
        edge: tuple[GatewayUnderTest, list[str]], queue: PricingQueue, body: bytes,
        headers: dict[str, str], status: int) -> None:
    gw, _ = edge
    before = await queue.redis.xlen(queue.keys.stream)
    async with aiohttp.ClientSession() as s, \
            s.post(f"{gw.internal}/quotes?material=PLA", data=body, headers=headers) as resp:
        assert resp.status == status
        assert resp.content_type == "application/problem+json"
    assert await queue.redis.xlen(queue.keys.stream) == before
    assert await queue.redis.keys("pricing:job:*") == []


async def test_multipart_upload_and_unknown_material(edge: tuple[GatewayUnderTest, list[str]]) -> None:
    gw, _ = edge
    async with aiohttp.ClientSession() as s:
        form = aiohttp.FormData()
        form.add_field("material", "petg")
        form.add_field("model", box_stl_binary(), filename="box.stl", content_type="model/stl")
        async with s.post(f"{gw.internal}/quotes", data=form) as resp:
            assert resp.status == 202
            assert (await resp.json())["material"] == "PETG"
        async with s.post(f"{gw.internal}/quotes?material=GOLD", data=box_stl_binary(), headers=STL) as resp:
            assert resp.status == 422
            assert "material" in (await resp.json())["detail"]


async def test_partners_see_only_their_own_jobs(edge: tuple[GatewayUnderTest, list[str]]) -> None:
    gw, (acme, globex) = edge
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.external}/partner/v1/quotes?material=PLA", data=box_stl_binary(),
                          headers={**STL, "Authorization": f"Bearer {acme}"}) as resp:
            location = resp.headers["Location"]
        async with s.get(f"{gw.external}{location}", headers={"Authorization": f"Bearer {globex}"}) as resp:
            assert resp.status == 404
        async with s.get(f"{gw.external}{location}", headers={"Authorization": f"Bearer {acme}"}) as resp:
            assert resp.status == 200
        async with s.get(f"{gw.external}{location}") as resp:
            assert resp.status == 401
        async with s.get(f"{gw.internal}/quotes/{location.rsplit('/', 1)[1]}") as resp:
            assert resp.status == 200  # operators see every job


async def test_idempotency_key_returns_the_same_job_per_partner(
        edge: tuple[GatewayUnderTest, list[str]], queue: PricingQueue) -> None:
    gw, (acme, globex) = edge
    url = f"{gw.external}/partner/v1/quotes?material=PLA"
    ids = []
    async with aiohttp.ClientSession() as s:
        for key in (acme, acme, globex):
            async with s.post(url, data=box_stl_binary(3, 4, 5), headers={
                    **STL, "Authorization": f"Bearer {key}", "Idempotency-Key": "order-77"}) as resp:
                assert resp.status == 202
                ids.append((await resp.json())["id"])
                replayed = resp.headers.get("Idempotent-Replayed")
        async with s.post(url, data=box_stl_binary(3, 4, 6), headers={
                **STL, "Authorization": f"Bearer {acme}", "Idempotency-Key": "order-77"}) as resp:
            assert resp.status == 422  # same key, different model
    assert ids[0] == ids[1] != ids[2]
    assert replayed is None
    # dedup is per partner (no cross-tenant oracle): globex's job is its own computation
    assert (await read_queue_state(queue)).depth == 2  # queued (listed: no worker runs here)


async def test_backlog_bound_answers_503_but_duplicates_still_get_through(
        tmp_path: Path, redis_url: str) -> None:
    store, _ = make_keys(tmp_path, ("acme", "gold", ("quotes:read",)))
    async with run_gateway(_config(tmp_path, redis_url, store, bound=2), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        statuses = []
        for model in (box_stl_binary(1, 2, 3), box_stl_binary(1, 2, 4), box_stl_binary(1, 2, 5),
                      box_stl_binary(1, 2, 3)):
            async with s.post(f"{gw.internal}/quotes?material=PLA", data=model, headers=STL) as resp:
                statuses.append(resp.status)
                if resp.status == 503:
                    assert resp.headers["Retry-After"] == "7"
                    assert resp.content_type == "application/problem+json"
        assert statuses == [202, 202, 503, 202]
        await asyncio.sleep(0.5)  # two probe rounds
        async with s.get(f"{gw.admin}/metrics") as resp:
            text = await resp.text()
        assert "pricing_backlog_bound 2.0" in text
        assert "pricing_queue_depth 2.0" in text
        assert 'pricing_submissions_total{outcome="full"} 1.0' in text


async def test_webhook_is_signed_with_the_owners_secret(
        edge: tuple[GatewayUnderTest, list[str]], queue: PricingQueue, tmp_path: Path) -> None:
    gw, _ = edge
    secrets = WebhookSecretStore(tmp_path / "webhook-secrets.json")
    internal = secrets.rotate("internal", overlap=0)  # operators' jobs are owned by "internal"
    other = secrets.rotate("acme", overlap=0)
    received: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app) as receiver, aiohttp.ClientSession() as s:
        callback = str(receiver.make_url("/hook"))
        async with s.post(f"{gw.internal}/quotes?material=PLA&callback_url={callback}",
                          data=box_stl_binary(2, 3, 4), headers=STL) as resp:
            assert resp.status == 202
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_run_worker(queue, stop)),
                 asyncio.create_task(WebhookNotifier(queue, secrets, allow_private=True).run(stop))]
        try:
            body, headers = await asyncio.wait_for(received.get(), 15)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    signed = {"msg_id": headers["webhook-id"], "timestamp": headers["webhook-timestamp"],
              "signature": headers["webhook-signature"]}
    assert verify(body, secret=internal.secret, **signed)
    assert not verify(body, secret=other.secret, **signed)
    assert json.loads(body)["status"] == "done"
    assert json.loads(body)["id"] == headers["webhook-id"]


async def test_private_callback_targets_are_refused_at_submit(
        tmp_path: Path, redis_url: str, queue: PricingQueue) -> None:
    store, _ = make_keys(tmp_path, ("acme", "gold", ("quotes:read", "quotes:write")))
    cfg = _config(tmp_path, redis_url, store, allow_private_callbacks=False)
    async with run_gateway(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        for target in ("http://169.254.169.254/latest/meta-data/", "http://localhost:9901/config",
                       "http://[::1]/", "http://10.0.0.5/admin"):
            async with s.post(f"{gw.internal}/quotes", params={"material": "PLA", "callback_url": target},
                              data=box_stl_binary(2, 3, 4), headers=STL) as resp:
                assert resp.status == 422
                problem = await resp.json(content_type="application/problem+json")
                assert "not a public address" in problem["detail"]
    assert await queue.redis.keys("pricing:job:*") == []


def _secrets(tmp_path: Path) -> WebhookSecretStore:
    store = WebhookSecretStore(tmp_path / "webhook-secrets.json")
    store.ensure("internal")
    return store


class _Receiver:
    def __init__(self) -> None:
        self.hits = 0

    async def hook(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=204)


async def _deliver_once(queue: PricingQueue, gw: GatewayUnderTest, callback: str,
                        notifier: WebhookNotifier) -> str:
    """Submit a job with ``callback``, let a worker price it, make one delivery attempt."""
    async with aiohttp.ClientSession() as s, s.post(
            f"{gw.internal}/quotes", params={"material": "PLA", "callback_url": callback},
            data=box_stl_binary(3, 3, 3), headers=STL) as resp:
        assert resp.status == 202
        job_id = (await resp.json())["id"]
    stop = asyncio.Event()
    worker = asyncio.create_task(_run_worker(queue, stop))
    try:
        while (await queue.redis.zscore(queue.keys.webhooks, job_id)) is None:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    async with notifier.session() as session:
        await notifier.deliver(session, job_id)
    return job_id


async def test_worker_refuses_to_deliver_to_a_private_literal(
        edge: tuple[GatewayUnderTest, list[str]], queue: PricingQueue, tmp_path: Path) -> None:
    gw, _ = edge  # this gateway accepts private targets; the worker (default) does not
    receiver = _Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.hook)
    async with TestServer(app, host="127.0.0.1") as server:
        job_id = await _deliver_once(queue, gw, str(server.make_url("/hook")),
                                     WebhookNotifier(queue, _secrets(tmp_path)))
    job = await queue.job(job_id)
    assert receiver.hits == 0
    assert job["webhook_status"] == "failed"
    assert "not a public address" in job["webhook_error"]
    assert await queue.redis.zscore(queue.keys.webhooks, job_id) is None  # not retried


async def test_worker_refuses_a_name_that_resolves_to_a_private_address(
        edge: tuple[GatewayUnderTest, list[str]], queue: PricingQueue, tmp_path: Path) -> None:
    from tests.unit.legacy_adapters.test_callback_guard import StaticResolver

    gw, _ = edge
    receiver = _Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.hook)
    async with TestServer(app, host="127.0.0.1") as server:
        # DNS says hooks.partner.example is 127.0.0.1 (re-pointed after submit: rebinding)
        resolver = PublicOnlyResolver(StaticResolver({"hooks.partner.example": ["127.0.0.1"]}))
        job_id = await _deliver_once(queue, gw, f"http://hooks.partner.example:{server.port}/hook",
                                     WebhookNotifier(queue, _secrets(tmp_path), resolver=resolver))
    job = await queue.job(job_id)
    assert receiver.hits == 0
    assert "no public address" in job["webhook_error"]
    assert await queue.redis.zscore(queue.keys.webhook_queue("internal"), job_id) is not None  # retried
