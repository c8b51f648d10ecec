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
from gateway.ratelimit.heartbeat import Heartbeat
from sharedstate.redis_spec import parse_redis_spec
from tests.support.redis_cluster_keys import redis_cluster

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
