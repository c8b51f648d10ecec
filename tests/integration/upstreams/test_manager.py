"""ClusterManager: lookup, snapshot and graceful reload."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from prometheus_client import REGISTRY

from gateway.upstreams.config import ClusterConfig, TimeoutPolicy
from gateway.upstreams.manager import ClusterManager
from tests.integration.upstreams.conftest import unique_name
from tests.support.fake_upstream import FakeUpstream


def _config(name: str, *urls: str, **settings: object) -> ClusterConfig:
    return ClusterConfig(name=name, endpoints=urls, balancer="round_robin", **settings)  # type: ignore[arg-type]


async def test_manager_serves_named_clusters(upstream_a: FakeUpstream, upstream_b: FakeUpstream) -> None:
    mes, crm = unique_name(), unique_name()
    manager = ClusterManager({mes: _config(mes, upstream_a.url), crm: _config(crm, upstream_b.url)})
    await manager.start()
    try:
        async with manager.get(mes).request("GET", "/echo", headers={}, body=None) as resp:
            assert resp.status == 200
        assert manager.names == {mes, crm}
        assert set(manager.snapshot()) == {mes, crm}
        with pytest.raises(KeyError):
            manager.get("nope")
    finally:
        await manager.aclose()
    assert (upstream_a.hits, upstream_b.hits) == (1, 0)


async def test_reload_keeps_unchanged_replaces_changed_and_drops_removed(
    upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    keep, change, drop, add = (unique_name() for _ in range(4))
    manager = ClusterManager(
        {
            keep: _config(keep, upstream_a.url),
            change: _config(change, upstream_a.url),
            drop: _config(drop, upstream_a.url),
        }
    )
    await manager.start()
    try:
        kept, changed = manager.get(keep), manager.get(change)
        await manager.reload(
            {
                keep: _config(keep, upstream_a.url),
                change: _config(change, upstream_b.url),
                add: _config(add, upstream_b.url),
            }
        )
        assert manager.get(keep) is kept
        assert manager.get(change) is not changed
        assert manager.names == {keep, change, add}
        async with manager.get(add).request("GET", "/echo", headers={}, body=None) as resp:
            assert resp.status == 200  # new clusters are started before they are served
        await asyncio.wait_for(manager.wait_retired(), 5)
        assert REGISTRY.get_sample_value(
            "gateway_upstream_endpoint_healthy", {"cluster": drop, "endpoint": upstream_a.url}
        ) is None
        assert REGISTRY.get_sample_value(
            "gateway_upstream_endpoint_healthy", {"cluster": change, "endpoint": upstream_a.url}
        ) is None
    finally:
        await manager.aclose()


async def test_replaced_cluster_finishes_in_flight_response_before_closing(
    upstream_a: FakeUpstream, upstream_b: FakeUpstream
) -> None:
    name = unique_name()
    manager = ClusterManager({name: _config(name, upstream_a.url)})
    await manager.start()
    try:
        old = manager.get(name)
        async with old.request("GET", "/drip?chunks=3&interval=0.01", headers={}, body=None) as resp:
            await manager.reload({name: _config(name, upstream_b.url)})
            retired = asyncio.ensure_future(manager.wait_retired())
            await asyncio.sleep(0)
            assert not retired.done()  # waiting for our response
            assert await resp.read() == b"x" * 48
        await asyncio.wait_for(retired, 5)
        assert old.snapshot()["in_flight"] == 0
    finally:
        await manager.aclose()


async def test_drain_is_bounded(upstream_a: FakeUpstream) -> None:
    name = unique_name()
    config = _config(name, upstream_a.url)
    manager = ClusterManager({name: config})
    await manager.start()
    try:
        held = manager.get(name).request(
            "GET", "/echo", headers={}, body=None, timeouts=TimeoutPolicy(overall=30)
        )
        await held.__aenter__()
        await manager.reload({name: dataclasses.replace(config, keepalive_timeout=5.0)}, drain_seconds=0.05)
        await asyncio.wait_for(manager.wait_retired(), 5)  # did not wait for the held request
        await held.__aexit__(None, None, None)
    finally:
        await manager.aclose()
