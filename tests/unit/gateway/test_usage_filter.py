"""The usage filter: which answers count as what (rate-limited, shed, created, deduplicated)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.auth.partners import Partner
from gateway.errors import CircuitOpen, GatewayError, LoadShed, RateLimited, UpstreamTimeout
from gateway.filters.usage import usage_filter
from gateway.quotes.api import ModelStoreFull, QueueFull
from gateway.request_keys import OPERATION_KEY, PARTNER_KEY, QUOTE_OUTCOME_KEY
from gateway.usage import UsageConfig, UsageRecorder

ACME = Partner(id="acme", tier="gold", scopes=frozenset(), key_id="k1")


class _Op:
    def __init__(self, operation_id: str) -> None:
        self.operation_id = operation_id


async def _counted(answer: Any, *, operation: str | None = None,
                   outcome: str | None = None) -> dict[str, int]:
    recorder = UsageRecorder(UsageConfig())
    request = make_mocked_request("GET", "/partner/v1/x")
    request[PARTNER_KEY] = ACME
    if operation is not None:
        request[OPERATION_KEY] = (_Op(operation), {})  # type: ignore[misc]

    async def handler(req: web.Request) -> web.StreamResponse:
        if outcome is not None:
            req[QUOTE_OUTCOME_KEY] = outcome
        if isinstance(answer, Exception):
            raise answer
        return web.Response(status=answer)

    with contextlib.suppress(GatewayError):  # the error filter answers it; only the counts matter here
        await usage_filter(recorder=recorder)(request, handler)
    return {kind: n for (_, _, kind), n in recorder._pending.items()}


@pytest.mark.parametrize(("answer", "kind"), [
    (RateLimited("over"), "rate_limited"), (429, "rate_limited"),
    (LoadShed("shed"), "shed"), (CircuitOpen("open"), "shed"), (QueueFull("full"), "shed"),
    (ModelStoreFull("full"), "shed")])
async def test_refusals_count_as_their_kind_and_as_a_request(answer: Any, kind: str) -> None:
    assert await _counted(answer) == {"requests": 1, kind: 1}


@pytest.mark.parametrize("answer", [200, 404, 422, 502, UpstreamTimeout("slow")])
async def test_other_answers_count_only_as_a_request(answer: Any) -> None:
    assert await _counted(answer) == {"requests": 1}


async def test_created_orders_and_quotes_count_but_a_replay_or_a_failure_does_not() -> None:
    assert await _counted(201, operation="createOrder") == {"requests": 1, "orders": 1}
    assert await _counted(422, operation="createOrder") == {"requests": 1}
    assert await _counted(202, operation="createQuote", outcome="queued") == {"requests": 1, "quotes": 1}
    assert await _counted(200, operation="createQuote", outcome="replay") == {"requests": 1}
    assert await _counted(200, operation="createQuote", outcome="cached") == {
        "requests": 1, "quotes": 1, "models_deduplicated": 1}
    assert await _counted(202, operation="createQuote", outcome="attached") == {
        "requests": 1, "quotes": 1, "models_deduplicated": 1}
