"""Cluster.request against real fake endpoints on port 0."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from prometheus_client import REGISTRY

from gateway.errors import (
    CircuitOpen,
    ConnectTimeout,
    NoHealthyEndpoint,
    PayloadTooLarge,
    UpstreamConnectError,
    UpstreamTimeout,
)
from gateway.upstreams.cluster import Cluster
from gateway.upstreams.config import (
    BreakerConfig,
    HealthCheckConfig,
    OutlierConfig,
    RetryBudgetConfig,
    RetryPolicy,
    TimeoutPolicy,
)
from gateway.upstreams.transport import TransportError
from tests.integration.upstreams.conftest import ClusterFactory
from tests.support.fake_upstream import FakeUpstream

FAST_RETRY = RetryPolicy(attempts=2, backoff_base=0.001, backoff_max=0.005)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def get(
    cluster: Cluster, path: str, method: str = "GET", body: object = None, **kwargs: object
) -> tuple[int, bytes]:
    async with cluster.request(method, path, headers={}, body=body, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.read()


async def test_round_robin_alternates_between_two_endpoints(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url, upstream_b.url) as cluster:
        statuses = [(await get(cluster, "/echo"))[0] for _ in range(10)]
    assert statuses == [200] * 10
    assert (upstream_a.hits, upstream_b.hits) == (5, 5)


async def test_request_passes_method_path_headers_and_body_untouched(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url) as cluster, cluster.request(
        "PUT", "/echo?a=1&b=%2F", headers={"X-Request-ID": "r-1"}, body=b"payload"
    ) as resp:
        echoed = json.loads(await resp.read())
    assert echoed["method"] == "PUT"
    assert echoed["path_qs"] == "/echo?a=1&b=%2F"
    assert echoed["body"] == "payload"
    assert echoed["headers"]["X-Request-ID"] == "r-1"
    # a proxy must not invent client headers
    assert not {"User-Agent", "Accept-Encoding", "Content-Type"} & set(echoed["headers"])


async def test_steady_gets_survive_an_endpoint_stopping_mid_stream(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    total, workers = 300, 4
    done = 0
    halfway = asyncio.Event()
    statuses: list[int] = []
    failures: list[BaseException] = []

    async def worker(cluster: Cluster) -> None:
        nonlocal done
        for _ in range(total // workers):
            try:
                statuses.append((await get(cluster, "/echo"))[0])
            except Exception as exc:  # collected, asserted below
                failures.append(exc)
            done += 1
            if done == total // 3:
                halfway.set()

    # The budget is sized for the 4 concurrent workers: the test is about failover.
    budget = RetryBudgetConfig(min_retry_concurrency=workers)
    async with started_cluster(
        upstream_a.url, upstream_b.url, retry=FAST_RETRY, retry_budget=budget
    ) as cluster:
        tasks = [asyncio.create_task(worker(cluster)) for _ in range(workers)]
        await asyncio.wait_for(halfway.wait(), 30)
        hits_before_stop = upstream_b.hits
        await upstream_b.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        snapshot = cluster.snapshot()
        name = cluster.name
    assert failures == []
    assert statuses == [200] * total
    assert hits_before_stop > 0
    assert sample("gateway_upstream_retries_total", cluster=name, reason="connect-failure") + sample(
        "gateway_upstream_retries_total", cluster=name, reason="reset"
    ) >= 1
    assert [ep["ejected"] for ep in snapshot["endpoints"]] == [False, True]


async def test_retryable_status_is_retried_then_returned_as_is(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url, upstream_b.url, retry=FAST_RETRY) as cluster:
        status, body = await get(cluster, "/status/503")
        name = cluster.name
    assert status == 503
    assert body.startswith(b"status from")
    assert upstream_a.hits + upstream_b.hits == 3  # first try + 2 retries
    assert upstream_a.hits > 0
    assert upstream_b.hits > 0  # retries prefer the endpoint not tried yet
    assert sample("gateway_upstream_retries_total", cluster=name, reason="gateway-error") == 2


async def test_post_is_not_retried(started_cluster: ClusterFactory, upstream_a: FakeUpstream) -> None:
    async with started_cluster(upstream_a.url, retry=FAST_RETRY) as cluster:
        status, _ = await get(cluster, "/status/503", method="POST")
    assert status == 503
    assert upstream_a.hits == 1


async def test_streamed_body_is_not_retried(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"part-1"
        yield b"part-2"

    async with started_cluster(upstream_a.url, retry=FAST_RETRY) as cluster, cluster.request(
        "PUT", "/status/502", headers={}, body=body()
    ) as resp:
        assert resp.status == 502
    assert upstream_a.hits == 1


async def test_hanging_endpoint_raises_upstream_timeout_after_per_try(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    timeouts = TimeoutPolicy(connect=1.0, per_try=0.2, overall=30.0)
    retry = RetryPolicy(attempts=1, backoff_base=0.0, backoff_max=0.0)
    async with started_cluster(upstream_a.url, timeouts=timeouts, retry=retry) as cluster:
        with pytest.raises(UpstreamTimeout) as info:
            await get(cluster, "/hang")
        name = cluster.name
    assert type(info.value) is UpstreamTimeout
    assert "per-try" in str(info.value)
    assert upstream_a.hits == 2  # timed-out GET was retried once
    assert sample("gateway_upstream_requests_total", cluster=name, endpoint=upstream_a.url,
                  status_class="timeout") == 2


async def test_overall_deadline_bounds_all_attempts(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    timeouts = TimeoutPolicy(connect=1.0, per_try=30.0, overall=0.3)
    async with started_cluster(upstream_a.url, timeouts=timeouts) as cluster:
        with pytest.raises(UpstreamTimeout, match="overall timeout"):
            await get(cluster, "/hang")
        assert cluster.snapshot()["in_flight"] == 0


async def test_overall_deadline_bounds_streaming_the_body(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    timeouts = TimeoutPolicy(connect=1.0, per_try=5.0, overall=0.5)
    async with started_cluster(upstream_a.url, timeouts=timeouts) as cluster:
        statuses: list[int] = []

        async def stream_body() -> None:
            path = "/drip?chunks=100&interval=0.05"
            async with cluster.request("GET", path, headers={}, body=None) as resp:
                statuses.append(resp.status)
                async for _ in resp.iter_any():
                    pass

        with pytest.raises(UpstreamTimeout, match="while streaming"):
            await stream_body()
        assert statuses == [200]  # headers arrived in time; the body did not
        assert cluster.snapshot()["endpoints"][0]["active_requests"] == 0


async def test_connect_failure_without_retry_raises_connect_error(
    started_cluster: ClusterFactory, dead_url: str
) -> None:
    async with started_cluster(dead_url, retry=FAST_RETRY) as cluster:
        with pytest.raises(UpstreamConnectError) as info:
            await get(cluster, "/echo")
        name = cluster.name
    assert info.value.status == 502
    assert not isinstance(info.value, ConnectTimeout)
    assert sample("gateway_upstream_requests_total", cluster=name, endpoint=dead_url,
                  status_class="connect_error") == 3


async def test_connect_failures_fail_over_and_eject_the_dead_endpoint(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, dead_url: str
) -> None:
    outlier = OutlierConfig(consecutive_failures=2)
    async with started_cluster(dead_url, upstream_a.url, retry=FAST_RETRY, outlier=outlier) as cluster:
        statuses = [(await get(cluster, "/echo"))[0] for _ in range(10)]
        snapshot = cluster.snapshot()
        assert cluster.healthy_endpoints == 1
        name = cluster.name
    assert statuses == [200] * 10
    assert snapshot["endpoints"][0]["ejected"] is True
    assert snapshot["endpoints"][0]["times_ejected"] == 1
    assert sample("gateway_upstream_ejections_total", cluster=name, endpoint=dead_url) == 1
    assert sample("gateway_upstream_endpoint_ejected", cluster=name, endpoint=dead_url) == 1


async def test_breaker_rejects_beyond_max_requests_immediately(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    breaker = BreakerConfig(max_requests=2, max_pending=0)
    async with started_cluster(upstream_a.url, breaker=breaker) as cluster:
        async with AsyncExitStack() as held:
            for _ in range(2):  # two responses held open = two requests in flight
                await held.enter_async_context(cluster.request("GET", "/echo", headers={}, body=None))
            with pytest.raises(CircuitOpen):
                await asyncio.wait_for(get(cluster, "/echo"), 5)  # bound only; it must not queue
            assert upstream_a.hits == 2
        status, _ = await get(cluster, "/echo")
        assert status == 200
        name = cluster.name
    assert sample("gateway_circuit_breaker_rejections_total", cluster=name, reason="max_requests") == 1


async def test_pending_request_gives_up_at_the_overall_deadline(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    breaker = BreakerConfig(max_requests=1, max_pending=1)
    timeouts = TimeoutPolicy(connect=1.0, per_try=5.0, overall=0.3)
    async with started_cluster(upstream_a.url, breaker=breaker, timeouts=timeouts) as cluster:
        # The held request gets a long deadline of its own so only the waiter's expires.
        async with cluster.request("GET", "/echo", headers={}, body=None, timeouts=TimeoutPolicy(overall=30)):
            with pytest.raises(CircuitOpen, match="overall deadline"):
                await get(cluster, "/echo")
        name = cluster.name
    assert sample("gateway_circuit_breaker_rejections_total", cluster=name, reason="pending_timeout") == 1


async def test_health_check_marks_endpoint_unhealthy_then_healthy(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    health = HealthCheckConfig(interval=0.02, timeout=1.0, healthy_threshold=2, unhealthy_threshold=2)
    async with started_cluster(upstream_a.url, upstream_b.url, health_check=health) as cluster:
        assert cluster.health is not None
        name = cluster.name
        upstream_b.set_healthy(False)
        await asyncio.wait_for(cluster.health.next_round(), 5)
        assert cluster.healthy_endpoints == 2  # one failure is below the threshold
        await asyncio.wait_for(cluster.health.next_round(), 5)
        assert cluster.healthy_endpoints == 1
        assert sample("gateway_upstream_endpoint_healthy", cluster=name, endpoint=upstream_b.url) == 0
        hits_b = upstream_b.hits
        for _ in range(6):
            assert (await get(cluster, "/echo"))[0] == 200
        assert upstream_b.hits == hits_b  # no traffic to the unhealthy endpoint

        upstream_b.set_healthy(True)
        await asyncio.wait_for(cluster.health.next_round(), 5)
        assert cluster.healthy_endpoints == 1
        await asyncio.wait_for(cluster.health.next_round(), 5)
        assert cluster.healthy_endpoints == 2
        assert sample("gateway_upstream_endpoint_healthy", cluster=name, endpoint=upstream_b.url) == 1
    assert upstream_b.health_checks >= 4


async def test_all_endpoints_unhealthy_gives_no_healthy_endpoint(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    health = HealthCheckConfig(interval=0.02, unhealthy_threshold=1)
    upstream_a.set_healthy(False)
    async with started_cluster(upstream_a.url, health_check=health) as cluster:
        assert cluster.health is not None
        await asyncio.wait_for(cluster.health.next_round(), 5)
        with pytest.raises(NoHealthyEndpoint) as info:
            await get(cluster, "/echo")
    assert info.value.status == 503
    assert upstream_a.hits == 0


async def test_snapshot_is_json_serialisable(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url) as cluster:
        await get(cluster, "/echo")
        snapshot = json.loads(json.dumps(cluster.snapshot()))
    assert snapshot["healthy_endpoints"] == 1
    assert snapshot["endpoints"][0]["url"] == upstream_a.url
    assert snapshot["in_flight"] == 0


async def test_failing_request_body_is_not_blamed_on_the_endpoint(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async def too_large() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        raise PayloadTooLarge("request body exceeds 1024 bytes")

    async with started_cluster(upstream_a.url) as cluster:
        with pytest.raises(PayloadTooLarge):
            await get(cluster, "/echo", method="POST", body=too_large())
        snapshot = cluster.snapshot()
        name = cluster.name
    assert snapshot["endpoints"][0]["consecutive_failures"] == 0
    assert snapshot["in_flight"] == 0
    assert sample("gateway_upstream_requests_total", cluster=name, endpoint=upstream_a.url,
                  status_class="reset") == 0


async def test_exhausted_retry_budget_returns_first_answer(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    no_budget = RetryBudgetConfig(budget_percent=0.0, min_retry_concurrency=0)
    async with started_cluster(upstream_a.url, retry=FAST_RETRY, retry_budget=no_budget) as cluster:
        status, _ = await get(cluster, "/status/503")
        name = cluster.name
    assert status == 503
    assert upstream_a.hits == 1
    assert sample("gateway_upstream_retry_budget_exhausted_total", cluster=name) == 1


@pytest.mark.parametrize("balancer", ["round_robin", "least_request", "ewma", "consistent_hash"])
async def test_every_balancer_serves_through_the_cluster(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, upstream_b: FakeUpstream, balancer: str
) -> None:
    async with started_cluster(upstream_a.url, upstream_b.url, balancer=balancer) as cluster:
        statuses = [(await get(cluster, f"/echo?i={i}"))[0] for i in range(20)]
    assert statuses == [200] * 20
    assert upstream_a.hits + upstream_b.hits == 20


async def test_consistent_hash_keeps_a_header_value_on_one_endpoint(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    served_by: dict[str, set[str]] = {}
    async with started_cluster(
        upstream_a.url, upstream_b.url, balancer="consistent_hash", hash_header="X-Partner-Id"
    ) as cluster:
        for i in range(64):
            partner = f"partner-{i % 32}"  # 32 keys: all on one endpoint has odds 2**-31
            async with cluster.request("GET", "/echo", headers={"X-Partner-Id": partner}, body=None) as resp:
                served_by.setdefault(partner, set()).add(json.loads(await resp.read())["served_by"])
    assert all(len(urls) == 1 for urls in served_by.values()), served_by
    assert {url for urls in served_by.values() for url in urls} == {upstream_a.url, upstream_b.url}


async def test_connection_pool_metrics_show_reuse(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url) as cluster:
        labels = {"cluster": cluster.name, "endpoint": upstream_a.url}
        opened_before = sample("gateway_upstream_connections_opened_total", **labels)
        for _ in range(5):
            assert (await get(cluster, "/echo"))[0] == 200
        cluster.publish_gauges()
        assert sample("gateway_upstream_connections_opened_total", **labels) - opened_before == 1
        assert sample("gateway_upstream_connections", state="idle", **labels) == 1
        assert sample("gateway_upstream_connections", state="in_use", **labels) == 0
        async with cluster.request("GET", "/slow?seconds=0.01", headers={}, body=None):
            cluster.publish_gauges()
            assert sample("gateway_upstream_connections", state="in_use", **labels) == 1


async def test_request_after_close_is_a_connect_error_not_a_crash(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    async with started_cluster(upstream_a.url) as cluster:
        assert (await get(cluster, "/echo"))[0] == 200
        await cluster.aclose()  # e.g. retired by a reload while a retry is still due
        with pytest.raises(UpstreamConnectError, match="closed"):
            await get(cluster, "/echo")


async def test_a_body_read_timeout_leaves_the_cluster_as_the_gateways_upstream_timeout(
    started_cluster: ClusterFactory, upstream_a: FakeUpstream
) -> None:
    """Transport errors are translated at the cluster's edge: the caller never sees the transport's."""
    async with started_cluster(upstream_a.url, timeouts=TimeoutPolicy(per_try=0.2, overall=10.0)) as cluster:
        with pytest.raises(UpstreamTimeout, match="body read timed out") as raised:
            async with cluster.request("GET", "/drip?chunks=5&interval=5", headers={}, body=None) as resp:
                await resp.read()  # headers and a first chunk at once, then nothing for 5 s
    assert not isinstance(raised.value, TransportError)
    assert isinstance(raised.value.__cause__, TransportError)
