"""A real Redis Cluster (3 primaries, or 3 + 3 replicas) for the tests and bench.failover.

Each node is ``redis-server --cluster-enabled yes`` on ephemeral ports (client and bus) in a
folder of its own; ``redis-cli --cluster create … --cluster-yes`` assigns the slots; every node
is stopped by PID. ``replicas=1`` gives the full topology of issue 16 (3 primaries + 3 replicas,
``--cluster-replicas 1``) that tests/integration/sharedstate connects every user to.
``primary_of(key)``, ``kill(port)`` and ``reshard(...)`` are what bench.failover does to it;
``spare_primary`` (a node joined with no slots) and ``move_slot`` (one slot, step by step, as
``redis-cli --cluster reshard`` does it) let a test look between the steps of a migration.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess


@dataclass(frozen=True, slots=True)
class ClusterNodes:
    """The client ports of every node (``127.0.0.1``), all slots assigned."""

    ports: tuple[int, ...]
    servers: dict[int, ServerProcess] = field(default_factory=dict, compare=False, repr=False)

    @property
    def seed_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def spec(self) -> str:
        """The ``redis+cluster://`` spec with every node as a seed (sharedstate.redis_spec)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


    def pids(self) -> list[int]:
        """PIDs of the nodes still running (for their CPU time in /proc/<pid>/stat)."""
        return [pid for s in self.servers.values() if s.alive() and (pid := s.pid) is not None]

    def primary_of(self, key: str) -> int:
        """The port of the primary serving ``key``'s slot now (asked of any live node)."""
        for port, server in self.servers.items():
            if not server.alive():
                continue
            slot = int(_cli(port, "CLUSTER", "KEYSLOT", key).strip() or -1)
            for line in _cli(port, "CLUSTER", "NODES").splitlines():
                fields = line.split()
                if len(fields) > 8 and "master" in fields[2] and "fail" not in fields[2] and any(
                        _covers(r, slot) for r in fields[8:]):
                    return int(fields[1].split(":")[1].split("@")[0])
        raise RuntimeError(f"no live node names a primary for {key!r}")

    def node_id(self, port: int) -> str:
        return _cli(port, "CLUSTER", "MYID").strip()

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (no clean shutdown, no goodbye to its replica)."""
        self.servers[port].stop(sig=signal.SIGKILL)

    def reshard(self, source: int, target: int, slots: int, *, timeout: float = 600) -> None:
        """`redis-cli --cluster reshard`: move `slots` slots (with their keys) from `source` to `target`."""
        subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{source}",
                        "--cluster-from", self.node_id(source), "--cluster-to", self.node_id(target),
                        "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "100"],
                       check=True, capture_output=True, timeout=timeout)

    def slot_count(self, port: int, *, through: int = 16383) -> int:
        """How many slots the primary on ``port`` serves (only those ``<= through``: the ones
        ``reshard`` moves first, as redis-cli takes a source's slots in ascending order)."""
        mine = self.node_id(port)
        for line in _cli(port, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if fields and fields[0] == mine:
                return sum(_width(r, through) for r in fields[8:])
        return 0


def _cli(port: int, *command: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *command], capture_output=True, text=True,
                          timeout=10, check=False).stdout


def _covers(slots: str, slot: int) -> bool:
    if slots.startswith("["):  # a slot being migrated or imported
        return False
    low, _, high = slots.partition("-")
    return int(low) <= slot <= int(high or low)


def _width(slots: str, through: int) -> int:
    if slots.startswith("["):
        return 0
    low, _, high = slots.partition("-")
    return max(0, min(int(high or low), through) - int(low) + 1)


def _node(stack: ExitStack, folder: Path, servers: dict[int, ServerProcess], bus: int = 0) -> int:
    folder.mkdir(parents=True)
    port, bus = free_port(), bus or free_port()
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
    servers[port] = server
    wait_for_port(port, timeout=15.0)
    return port


def _state_ok(port: int) -> bool:
    return "cluster_state:ok" in _cli(port, "CLUSTER", "INFO")


def _synced(port: int) -> bool:
    """A primary, or a replica whose first sync finished (one that never synced is never promoted)."""
    out = _cli(port, "INFO", "replication")
    return "role:master" in out or "master_link_status:up" in out


@contextmanager
def redis_cluster(base_dir: Path, *, primaries: int = 3, replicas: int = 0,
                  timeout: float = 30.0) -> Iterator[ClusterNodes]:
    """Start the nodes (``replicas`` per primary), create the cluster, wait for ``cluster_state:ok``."""
    with ExitStack() as stack:
        servers: dict[int, ServerProcess] = {}
        ports = tuple(_node(stack, base_dir / f"node{i}", servers) for i in range(primaries * (1 + replicas)))
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + timeout
        while not all(_state_ok(p) and _synced(p) for p in ports):  # gossip: each learns the slots
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield ClusterNodes(ports, servers)


@contextmanager
def spare_primary(nodes: ClusterNodes, folder: Path, *, timeout: float = 30.0) -> Iterator[int]:
    """One more node, met by the cluster, serving no slot yet (so clients do not know it): its port."""
    with ExitStack() as stack:
        bus = free_port()
        port = _node(stack, folder, nodes.servers, bus)
        _cli(nodes.ports[0], "CLUSTER", "MEET", "127.0.0.1", str(port), str(bus))
        new_id = _cli(port, "CLUSTER", "MYID").strip()
        deadline = time.monotonic() + timeout
        ids = [nodes.node_id(p) for p in nodes.ports]
        while not (all(new_id in _cli(p, "CLUSTER", "NODES") for p in nodes.ports) and _state_ok(port)
                   and all(i in _cli(port, "CLUSTER", "NODES") for i in ids)):
            if time.monotonic() > deadline:
                raise TimeoutError("the spare node did not join the cluster")
            time.sleep(0.1)
        yield port
        nodes.servers.pop(port, None)


def move_slot(nodes: ClusterNodes, slot: int, source: int, target: int) -> Iterator[str]:
    """Move ``slot`` with its keys from ``source`` to ``target`` with ``CLUSTER SETSLOT`` steps;
    yields after each step (what it did), so a caller can act between them."""
    source_id, target_id = nodes.node_id(source), nodes.node_id(target)
    _cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    yield f"slot {slot} importing on {target}"
    _cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    yield f"slot {slot} migrating on {source}"
    while keys := _cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "100").split():
        out = _cli(source, "MIGRATE", "127.0.0.1", str(target), "", "0", "5000", "KEYS", *keys)
        if not out.startswith("OK"):
            raise RuntimeError(f"MIGRATE of slot {slot} to {target}: {out.strip()}")
        yield f"{len(keys)} keys of slot {slot} migrated to {target}"
    for port in (target, source, *(p for p in nodes.servers if p not in (source, target))):
        if nodes.servers[port].alive():
            _cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
    yield f"slot {slot} assigned to {target}"
