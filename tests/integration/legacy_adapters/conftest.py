"""Fixtures of the pricing integration tests: a queue + submitter on the session Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, Submission, SubmitSettings
from tests.integration.legacy_adapters.pricing_support import submit_checked


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[PricingQueue]:
    q = PricingQueue.from_url(redis_url)
    await q.ensure_group()
    yield q
    await q.aclose()


@pytest.fixture
def submitter(queue: PricingQueue) -> QuoteSubmitter:
    return QuoteSubmitter(queue, SubmitSettings(backlog_bound=10_000))


async def submit(submitter: QuoteSubmitter, model: bytes, material: str = "PLA", **kw: str) -> Submission:
    request = QuoteRequest(model=model, material=material, owner="internal", **kw)
    return await submit_checked(submitter, request)
