"""A submission is two queue steps the caller runs; the model check sits between them, never inside one."""

from __future__ import annotations

import json

from legacy_adapters.queue import PricingQueue
from legacy_adapters.submit import QuoteRequest, QuoteSubmitter
from legacy_sim.pricing.samples import box_stl_binary
from tests.integration.legacy_adapters.conftest import submit


def _request(model: bytes, **kw: str) -> QuoteRequest:
    return QuoteRequest(model=model, material="PLA", owner="internal", **kw)


async def test_a_new_model_is_unknown_to_the_first_step_which_writes_nothing(
        queue: PricingQueue, submitter: QuoteSubmitter) -> None:
    async with submitter.submission(_request(box_stl_binary(5, 6, 7), idempotency_key="k1")) as pending:
        assert await pending.known() is None  # the caller checks the model now; it may refuse it
    # a model refused after step 1 leaves no trace: only the stream the fixture created exists
    assert await queue.redis.keys("*") == [queue.keys.stream.encode()]
    assert await queue.redis.xlen(queue.keys.stream) == 0


async def test_the_first_step_answers_a_priced_model_and_a_replay_without_a_model_check(
        queue: PricingQueue, submitter: QuoteSubmitter) -> None:
    model = box_stl_binary(5, 6, 7)
    first = await submit(submitter, model, idempotency_key="k1")
    await queue.start(first.job_id, "0-1", "w")
    await queue.complete(first.job_id, "0-1", json.dumps({"price": "1.00"}), 60)
    for request, outcome in ((_request(model), "cached"), (_request(model, idempotency_key="k1"), "replay")):
        async with submitter.submission(request) as pending:
            answer = await pending.known()  # no enqueue(fingerprint): nothing was checked
        assert answer is not None
        assert answer.outcome == outcome
