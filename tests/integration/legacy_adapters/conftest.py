"""Fixtures of the pricing integration tests: a queue + submitter on the session Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.quotes.api import parse_model
from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter, Submission, SubmitSettings


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
    return await submitter.submit(QuoteRequest(model=model, material=material, owner="internal", **kw),
                                  parse=parse_model)
