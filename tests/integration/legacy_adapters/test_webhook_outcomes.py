"""Each webhook delivery outcome lands through the queue: on the job record and in the owner's schedule.

The notifier runs in-process against a real receiver and the session Redis; the job is priced
or dead-lettered with the worker's own queue steps (``start`` → ``complete``/``dead_letter``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts.webhook_secrets import WebhookSecretStore
from legacy_adapters.queue import PricingQueue, now_ms
from legacy_adapters.submit import QuoteSubmitter
from legacy_adapters.webhooks import WebhookNotifier
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.conftest import submit
from tests.support.waiting import eventually

OWNER = "internal"  # the conftest's submissions are operators' jobs


class Receiver:
    """A webhook endpoint answering ``status``; keeps the bodies it got."""

    def __init__(self) -> None:
        self.status = 204
        self.bodies: list[dict[str, object]] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.Response(status=self.status)


Hooks = tuple[Receiver, str]  # the receiver and its URL


@pytest.fixture
async def receiver() -> AsyncIterator[Hooks]:
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hooks.hook)
    async with TestServer(app, host="127.0.0.1") as server:
        yield hooks, str(server.make_url("/hook"))


def _notifier(queue: PricingQueue, tmp_path: Path, *, max_attempts: int = 8) -> WebhookNotifier:
    secrets = WebhookSecretStore(tmp_path / "webhook-secrets.json")
    secrets.ensure(OWNER)
    return WebhookNotifier(queue, secrets, allow_private=True, max_attempts=max_attempts)


async def _finished_job(queue: PricingQueue, submitter: QuoteSubmitter, callback: str, *,
                        priced: bool = True) -> str:
    job_id = (await submit(submitter, box_stl_binary(3, 4, 5), callback_url=callback)).job_id
    entry = "0-1"  # not in the stream: acking it is a no-op
    await queue.start(job_id, entry, "w")
    if priced:
        await queue.complete(job_id, entry, json.dumps({"price": "1.00"}), 60)
    else:
        await queue.dead_letter(job_id, entry, "the legacy refused the model")
    return job_id


async def _schedule(queue: PricingQueue, job_id: str) -> tuple[float | None, float | None, float | None]:
    """(inbox, owner's queue, owner's earliest due) scores of ``job_id``'s webhook."""
    r, k = queue.redis, queue.keys
    return (await r.zscore(k.webhooks, job_id), await r.zscore(k.webhook_queue(OWNER), job_id),
            await r.zscore(k.webhook_owners, OWNER))


async def _one_attempt(notifier: WebhookNotifier, job_id: str) -> None:
    async with notifier.session() as session:
        await notifier.deliver(session, job_id)


async def test_a_delivered_webhook_is_recorded_on_the_job_and_leaves_the_schedule(
        queue: PricingQueue, submitter: QuoteSubmitter, receiver: Hooks, tmp_path: Path) -> None:
    hooks, url = receiver
    job_id = await _finished_job(queue, submitter, url)
    assert (await _schedule(queue, job_id))[0] is not None  # the completion put it in the inbox
    stop = asyncio.Event()
    task = asyncio.create_task(_notifier(queue, tmp_path).run(stop))  # claims it from the inbox

    async def delivered() -> bool:
        return (await queue.job(job_id) or {}).get("webhook_status") == "delivered"

    try:
        await eventually(delivered, timeout=10, what="webhook delivered")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    job = await queue.job(job_id) or {}
    assert job["webhook_attempts"] == "1"
    assert [b["status"] for b in hooks.bodies] == ["done"]
    assert await _schedule(queue, job_id) == (None, None, None)


async def test_a_failed_attempt_is_recorded_and_scheduled_again_in_the_owners_queue(
        queue: PricingQueue, submitter: QuoteSubmitter, receiver: Hooks, tmp_path: Path) -> None:
    hooks, url = receiver
    hooks.status = 503
    job_id = await _finished_job(queue, submitter, url)
    before = now_ms()
    await _one_attempt(_notifier(queue, tmp_path), job_id)
    job = await queue.job(job_id) or {}
    assert (job["webhook_attempts"], job["webhook_error"]) == ("1", "HTTP 503")
    assert "webhook_status" not in job
    inbox, due, earliest = await _schedule(queue, job_id)
    assert inbox is None
    assert due is not None
    assert due > before  # after its back-off
    assert earliest == due


async def test_a_webhook_out_of_attempts_is_given_up_on_the_job_and_leaves_the_schedule(
        queue: PricingQueue, submitter: QuoteSubmitter, receiver: Hooks, tmp_path: Path) -> None:
    hooks, url = receiver
    hooks.status = 500
    job_id = await _finished_job(queue, submitter, url)
    notifier = _notifier(queue, tmp_path, max_attempts=2)
    await _one_attempt(notifier, job_id)
    await _one_attempt(notifier, job_id)
    job = await queue.job(job_id) or {}
    assert (job["webhook_status"], job["webhook_attempts"]) == ("failed", "2")
    assert job["webhook_error"] == "HTTP 500"
    assert len(hooks.bodies) == 2
    assert await _schedule(queue, job_id) == (None, None, None)


async def test_a_dead_lettered_jobs_webhook_says_failed_and_is_recorded_delivered(
        queue: PricingQueue, submitter: QuoteSubmitter, receiver: Hooks, tmp_path: Path) -> None:
    hooks, url = receiver
    job_id = await _finished_job(queue, submitter, url, priced=False)
    await _one_attempt(_notifier(queue, tmp_path), job_id)
    job = await queue.job(job_id) or {}
    assert (job["status"], job["webhook_status"]) == ("failed", "delivered")
    assert [(b["status"], b["error"]) for b in hooks.bodies] == [("failed", "the legacy refused the model")]
    assert await _schedule(queue, job_id) == (None, None, None)


async def test_a_webhook_whose_job_expired_is_dropped_without_writing_a_job(
        queue: PricingQueue, submitter: QuoteSubmitter, receiver: Hooks, tmp_path: Path) -> None:
    hooks, url = receiver
    job_id = await _finished_job(queue, submitter, url)
    await queue.redis.delete(queue.keys.job(job_id))  # its TTL ran out
    await _one_attempt(_notifier(queue, tmp_path), job_id)
    assert hooks.bodies == []
    assert await queue.job(job_id) is None
    assert (await _schedule(queue, job_id))[0] is None
