"""Retries of attempts the endpoint never saw: any method, outside the retry budget (issue 18).

Real sockets: a port nothing listens on (connection refused), the aiohttp fake upstream, and a
raw server that reads a request and drops the connection unanswered (reset after the write).
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.errors import UpstreamError
from gateway.upstreams.config import OutlierConfig, RetryBudgetConfig, RetryPolicy
from gateway.upstreams.transport import ServerDisconnected
from tests.integration.upstreams.conftest import ClusterFactory
from tests.support.dropping_server import drops_after_reading
from tests.support.fake_upstream import FakeUpstream

FAST_RETRY = RetryPolicy(attempts=2, backoff_base=0.001, backoff_max=0.005)
#: A retry budget that refuses every retry it is asked for.
NO_BUDGET = RetryBudgetConfig(budget_percent=0.0, min_retry_concurrency=0)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def request(cluster: object, method: str, body: bytes | None = None) -> int:
    async with cluster.request(method, "/echo", headers={}, body=body) as resp:  # type: ignore[attr-defined]
        await resp.read()
        return int(resp.status)


async def test_connect_refused_get_is_retried_elsewhere_even_with_no_retry_budget(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, dead_url: str
) -> None:
    async with started_cluster(dead_url, upstream_a.url, retry=FAST_RETRY, retry_budget=NO_BUDGET) as cluster:
        statuses = [await request(cluster, "GET") for _ in range(4)]
        name = cluster.name
    refused = sample("gateway_upstream_requests_total", cluster=name, endpoint=dead_url,
                     status_class="connect_error")
    assert statuses == [200] * 4
    assert upstream_a.hits == 4
    assert refused >= 1
    assert sample("gateway_upstream_retries_unsent_total", cluster=name, reason="connect-failure") == refused
    assert sample("gateway_upstream_retries_total", cluster=name, reason="connect-failure") == refused
    assert sample("gateway_upstream_retry_budget_exhausted_total", cluster=name) == 0


async def test_connect_refused_post_is_retried_elsewhere_and_sent_once(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, dead_url: str
) -> None:
    async with started_cluster(dead_url, upstream_a.url, retry=FAST_RETRY) as cluster:
        statuses = [await request(cluster, "POST", b'{"n": 1}') for _ in range(4)]
    assert statuses == [200] * 4
    assert upstream_a.hits == 4  # each POST reached an endpoint exactly once


async def test_post_reset_after_it_was_written_is_not_retried(started_cluster: ClusterFactory) -> None:
    async with drops_after_reading() as (rude_url, heads), \
            started_cluster(rude_url, retry=FAST_RETRY) as cluster:
        with pytest.raises(UpstreamError):
            await request(cluster, "POST", b'{"n": 1}')
        name = cluster.name
    assert len(heads) == 1  # the endpoint saw it and may have acted on it: never sent twice
    assert sample("gateway_upstream_retries_total", cluster=name, reason="reset") == 0
    assert sample("gateway_upstream_retry_budget_exhausted_total", cluster=name) == 0


async def test_get_reset_after_it_was_written_asks_the_retry_budget(started_cluster: ClusterFactory) -> None:
    async with drops_after_reading() as (rude_url, heads), \
            started_cluster(rude_url, retry=FAST_RETRY, retry_budget=NO_BUDGET) as cluster:
        with pytest.raises(UpstreamError):
            await request(cluster, "GET")  # possibly seen: the (empty) budget refuses the retry
        name = cluster.name
    assert len(heads) == 1
    assert sample("gateway_upstream_retry_budget_exhausted_total", cluster=name) == 1
    assert sample("gateway_upstream_retries_unsent_total", cluster=name, reason="reset-before-request") == 0


async def test_unsent_retry_counters_exist_at_zero_from_start_up(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url) as cluster:
        name = cluster.name
        values = {reason: REGISTRY.get_sample_value("gateway_upstream_retries_unsent_total",
                                                    {"cluster": name, "reason": reason})
                  for reason in ("connect-failure", "reset-before-request")}
    assert values == {"connect-failure": 0.0, "reset-before-request": 0.0}


class ClosedBeforeWrite:
    """A transport whose every connection turns out closed before the request is written."""

    def __init__(self) -> None:
        self.sends = 0

    async def send(self, *_args: object, **_kwargs: object) -> object:
        self.sends += 1
        raise ServerDisconnected("closed by the endpoint before the request was written", request_sent=False)

    async def aclose(self) -> None:
        return None


async def test_post_reset_before_it_was_written_is_retried_elsewhere_outside_the_budget(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    closing_url = "http://127.0.0.1:9"  # never dialled: its transport is replaced below
    async with started_cluster(closing_url, upstream_a.url, retry=FAST_RETRY,
                               retry_budget=NO_BUDGET) as cluster:
        closing = ClosedBeforeWrite()
        cluster.transports = {**cluster.transports, closing_url: closing}
        statuses = [await request(cluster, "POST", b'{"n": 1}') for _ in range(2)]  # round robin
        name = cluster.name
    assert statuses == [200, 200]
    assert closing.sends >= 1
    assert upstream_a.hits == 2  # each POST reached an endpoint exactly once
    assert sample("gateway_upstream_retries_unsent_total", cluster=name,
                  reason="reset-before-request") == closing.sends
    assert sample("gateway_upstream_retry_budget_exhausted_total", cluster=name) == 0


async def test_an_endpoint_dying_with_requests_written_loses_none_under_the_default_budget(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    # An endpoint dying under load resets every request already written to it, up to the
    # outlier detection's ``consecutive_failures`` (5 by default) before it is ejected, all inside
    # one backoff window. Those retries are possibly seen, so they ask the budget; its default
    # floor must cover the burst (Envoy's 3 did not: CI's endpoint kill lost 1-2 GETs that way).
    burst = OutlierConfig().consecutive_failures
    async with drops_after_reading() as (rude_url, heads), \
            started_cluster(rude_url, upstream_a.url) as cluster:  # default retry, budget, outlier
        statuses = await asyncio.gather(*(request(cluster, "GET") for _ in range(2 * burst)))
        name = cluster.name
    assert len(heads) == burst  # round robin: every other request was written to the dying endpoint
    assert statuses == [200] * (2 * burst)
    assert sample("gateway_upstream_retries_total", cluster=name, reason="reset") == burst
    assert sample("gateway_upstream_retry_budget_exhausted_total", cluster=name) == 0
