"""A minimal real Redis Cluster (3 primaries, no replicas) for the key-layout tests.

Each node is ``redis-server --cluster-enabled yes`` on ephemeral ports (client and bus) in a
folder of its own; ``redis-cli --cluster create … --cluster-yes`` assigns the slots; every node
is stopped by PID. ``replicas=1`` gives the full topology of issue 16 (3 primaries + 3 replicas,
``--cluster-replicas 1``) that tests/integration/sharedstate connects every user to.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess


@dataclass(frozen=True, slots=True)
class ClusterNodes:
    """The client ports of every node (``127.0.0.1``), all slots assigned."""

    ports: tuple[int, ...]

    @property
    def seed_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def spec(self) -> str:
        """The ``redis+cluster://`` spec with every node as a seed (sharedstate.redis_spec)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


def _node(stack: ExitStack, folder: Path) -> int:
    folder.mkdir(parents=True)
    port, bus = free_port(), free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found: apt-get install redis-server (or `make deps`)")
    server = ServerProcess(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--cluster-enabled", "yes",
         "--cluster-port", str(bus), "--cluster-config-file", str(folder / "nodes.conf"),
         "--cluster-node-timeout", "2000",  # a killed primary's replica takes over within seconds
         "--dir", str(folder), "--save", "", "--appendonly", "no", "--daemonize", "no"],
        log_path=folder / "redis.log")
    server.start()
    stack.callback(server.stop)
    wait_for_port(port, timeout=15.0)
    return port


def _state_ok(port: int) -> bool:
    out = subprocess.run(["redis-cli", "-p", str(port), "CLUSTER", "INFO"], capture_output=True,
                         text=True, timeout=10, check=False).stdout
    return "cluster_state:ok" in out


def _synced(port: int) -> bool:
    """A primary, or a replica whose first sync finished (one that never synced is never promoted)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"], capture_output=True,
                         text=True, timeout=10, check=False).stdout
    return "role:master" in out or "master_link_status:up" in out


@contextmanager
def redis_cluster(base_dir: Path, *, primaries: int = 3, replicas: int = 0,
                  timeout: float = 30.0) -> Iterator[ClusterNodes]:
    """Start the nodes (``replicas`` per primary), create the cluster, wait for ``cluster_state:ok``."""
    with ExitStack() as stack:
        ports = tuple(_node(stack, base_dir / f"node{i}") for i in range(primaries * (1 + replicas)))
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + timeout
        while not all(_state_ok(p) and _synced(p) for p in ports):  # gossip: each learns the slots
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield ClusterNodes(ports)
