"""The Redis topology of a failover scenario, and what the scenario does to it.

``sentinel``: 1 primary, 1 replica, 3 sentinels; the disruption SIGKILLs the primary.
``cluster``: 3 primaries + 3 replicas; the disruption SIGKILLs the primary that serves the pricing
queue's slot (``{pricing}``) — the rate-limited partner is picked so its counters live there too.
``reshard``: the same cluster; the disruption moves that primary's slots up to the last of the
queue's and the partner's (keys included; redis-cli moves a source's slots in ascending order) to
another primary with ``redis-cli --cluster reshard`` while the traffic runs.
The starters are devstack's (the failover tests use the same ones).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.crc import key_slot

from devstack.redis_cluster import ClusterNodes, redis_cluster
from devstack.redis_sentinel import SentinelTopology, redis_sentinel
from gateway.ratelimit.policy import parse_windows
from gateway.ratelimit.shared import counter_keys

SCENARIOS = ("sentinel", "cluster", "reshard")
PRICING_PREFIX = "{pricing}"  # one slot on Cluster (docs/redis.md), the same on Sentinel
RATELIMIT_PREFIX = "gateway:rl"


@dataclass
class Topology:
    """What the stack is given (``spec``) and what the scenario does (``disrupt``)."""

    scenario: str
    spec: str
    partner: str  # the rate-limited partner (on Cluster: its counters on the disrupted primary)
    disrupt: Callable[[], str]  # blocking; returns what it did, for the report
    pids: Callable[[], list[int]]
    cluster: bool


def _counter_key(partner: str) -> str:
    window = parse_windows({"burst": "1/second"}, "failover")[0]
    return counter_keys(RATELIMIT_PREFIX, window, ("partner", partner))[1]


def _partner_on(nodes: ClusterNodes, port: int) -> str:
    """A partner id whose rate-limit counters hash to a slot of the primary on ``port``, below the
    queue's slot (so the reshard moves no more slots than the queue's needs)."""
    below = key_slot(f"{PRICING_PREFIX}:stream".encode())
    for i in range(5000):
        name = f"limited-{i}"
        if key_slot(_counter_key(name).encode()) <= below and nodes.primary_of(_counter_key(name)) == port:
            return name
    raise RuntimeError(f"no partner id hashes to the primary on {port}")


def _kill_sentinel_primary(topology: SentinelTopology) -> str:
    return f"SIGKILL of the Sentinel primary on port {topology.kill_primary()}"


def _kill(nodes: ClusterNodes, port: int) -> str:
    nodes.kill(port)
    return f"SIGKILL of the Cluster primary on port {port} (slot of {PRICING_PREFIX} and of the partner)"


def _reshard(nodes: ClusterNodes, port: int, partner: str) -> str:
    target = next(p for p in nodes.ports if p != port and nodes.slot_count(p) > 0)
    last = max(key_slot(f"{PRICING_PREFIX}:stream".encode()), key_slot(_counter_key(partner).encode()))
    slots = nodes.slot_count(port, through=last)
    nodes.reshard(port, target, slots)
    return (f"redis-cli --cluster reshard: {slots} slots with their keys (those of {PRICING_PREFIX} and "
            f"of the partner among them) from the primary on {port} to the one on {target}")


@contextmanager
def topology(scenario: str, base_dir: Path) -> Iterator[Topology]:
    """Start the servers of ``scenario`` on ephemeral ports; stop them by PID on exit."""
    if scenario == "sentinel":
        with redis_sentinel(base_dir / "sentinel") as sentinel:
            yield Topology(scenario, sentinel.url, "limited-0", lambda: _kill_sentinel_primary(sentinel),
                           sentinel.pids, cluster=False)
        return
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    with redis_cluster(base_dir / "cluster", replicas=1) as nodes:
        port = nodes.primary_of(f"{PRICING_PREFIX}:stream")
        partner = _partner_on(nodes, port)
        def action() -> str:
            return _kill(nodes, port) if scenario == "cluster" else _reshard(nodes, port, partner)

        yield Topology(scenario, nodes.spec, partner, action, nodes.pids, cluster=True)


async def disrupt(top: Topology) -> str:
    """Run the blocking disruption on a thread (the load keeps running in the loop)."""
    return await asyncio.to_thread(top.disrupt)
