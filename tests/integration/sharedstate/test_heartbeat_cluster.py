"""The rate limiter's instance count on a real 3-primary Cluster stays exact while the slots of
the heartbeat's keys move, step by step, to a primary the clients did not know (docs/redis.md
"Heartbeat"). The previous per-instance keys counted with SCAN lost the instance whose key had
moved: a client scans only the primaries it knows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from redis.crc import key_slot

from devstack.redis_cluster import move_slot, spare_primary
from gateway.ratelimit import PartnerLimiter, RateLimitConfig
from gateway.ratelimit.heartbeat import Heartbeat
from gateway.ratelimit.policy import parse_windows
from gateway.ratelimit.shared import counter_keys
from sharedstate.redis_spec import parse_redis_spec
from tests.support.redis_cluster_keys import redis_cluster
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _heartbeat_keys(ports: tuple[int, ...]) -> set[str]:
    found: set[str] = set()
    for port in ports:
        out = subprocess.run(["redis-cli", "-p", str(port), "KEYS", "*gateway:instances*"],
                             capture_output=True, text=True, check=True, timeout=10).stdout
        found.update(out.split())
    return found


async def test_the_count_stays_exact_while_the_heartbeat_slots_move(tmp_path: Path) -> None:
    with redis_cluster(tmp_path / "cluster") as nodes:
        spec = parse_redis_spec(nodes.spec, "t")
        clients = [spec.client(socket_timeout=1.0, socket_connect_timeout=1.0) for _ in range(2)]
        beats = [Heartbeat(c, instance_id=f"gw-{i}", interval=30.0) for i, c in enumerate(clients)]
        try:
            for b in beats:  # both are in
                await b.beat()
            assert [await b.beat() for b in beats] == [2, 2]
            with spare_primary(nodes, tmp_path / "spare") as spare:
                keys = _heartbeat_keys(nodes.ports)
                assert keys
                for slot in sorted({key_slot(k.encode()) for k in keys}):
                    source = nodes.primary_of(next(k for k in keys if key_slot(k.encode()) == slot))
                    for step in move_slot(nodes, slot, source, spare):
                        counts = [await b.beat() for b in beats]
                        assert counts == [2, 2], f"after {step}: {counts}"
                assert _heartbeat_keys((spare,)) == keys  # everything the heartbeat writes moved
                assert [await b.beat() for b in beats] == [2, 2]
        finally:
            for c in clients:
                await c.aclose()


async def test_the_hot_path_follows_a_partner_slot_to_a_new_primary(tmp_path: Path) -> None:
    """The same moves for a partner's counters, checked through the limiter between every step:
    redis-py 8.1 raised AttributeError on the ASK to the node it did not know (a 500)."""
    windows = parse_windows({"rate": "1000000/minute"}, "t")
    ids = (("partner", "acme"),)
    key = counter_keys("gateway:rl", windows[0], ids[0])[1]
    with redis_cluster(tmp_path / "cluster") as nodes:
        limiter = PartnerLimiter(RateLimitConfig(redis_url=nodes.spec, heartbeat_interval=0.2,
                                                 socket_timeout=1.0))
        await limiter.start()
        try:
            assert await limiter.check(windows, ids) is not None
            with spare_primary(nodes, tmp_path / "spare") as spare:
                slot = key_slot(key.encode())
                for step in move_slot(nodes, slot, nodes.primary_of(key), spare):
                    decision = await limiter.check(windows, ids)
                    assert decision is not None, step  # degraded is fine (TRYAGAIN while half moved)
                    assert decision.allowed, step
                assert nodes.primary_of(key) == spare

                async def shared() -> bool:
                    return not limiter.degraded

                await eventually(shared, timeout=30, what="shared mode with the slot on the new primary")
                assert await limiter.check(windows, ids) is not None
                assert not limiter.degraded
        finally:
            await limiter.aclose()
