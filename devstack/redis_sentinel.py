"""A real Redis Sentinel topology (failover tests, bench.failover): 1 primary, 1 replica, 3 sentinels.

Every server is ``redis-server`` (a sentinel is ``redis-server <conf> --sentinel``) on an
ephemeral port, in a folder of its own, stopped by PID. ``kill_primary()`` SIGKILLs the primary
(no clean shutdown, no goodbye to the replica); with ``down-after-milliseconds 1000`` the
sentinels agree and promote the replica within a few seconds.
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

SERVICE = "mymaster"


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found: apt-get install redis-server (or `make deps`)")
    return binary


def _cli(port: int, *command: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *command], capture_output=True, text=True,
                          timeout=10, check=False).stdout


@dataclass
class SentinelTopology:
    """Ports of the data nodes and sentinels; ``url`` is the spec every client is given."""

    primary_port: int
    replica_port: int
    sentinel_ports: tuple[int, ...]
    servers: dict[int, ServerProcess] = field(default_factory=dict)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def primary_address(self) -> tuple[str, int]:
        """The primary the first answering sentinel names."""
        for port in self.sentinel_ports:
            out = _cli(port, "SENTINEL", "get-master-addr-by-name", SERVICE).split()
            if len(out) == 2:
                return out[0], int(out[1])
        raise RuntimeError("no sentinel answered")

    def pids(self) -> list[int]:
        """PIDs of the live servers, data nodes and sentinels (for their CPU time)."""
        return [pid for s in self.servers.values() if s.alive() and (pid := s.pid) is not None]

    def kill_primary(self) -> int:
        """SIGKILL the current primary; returns its port."""
        port = self.primary_address()[1]
        self.servers[port].stop(sig=signal.SIGKILL)
        return port


def _data_node(stack: ExitStack, folder: Path, port: int, *extra: str) -> ServerProcess:
    folder.mkdir(parents=True)
    server = ServerProcess([_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
                            "--save", "", "--appendonly", "no", "--daemonize", "no", *extra],
                           log_path=folder / "redis.log")
    server.start()
    stack.callback(server.stop)
    wait_for_port(port, timeout=15.0)
    return server


def _sentinel(stack: ExitStack, folder: Path, port: int, primary_port: int) -> ServerProcess:
    folder.mkdir(parents=True)
    conf = folder / "sentinel.conf"  # a sentinel rewrites its own config: a file of its own
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                    f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
                    f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                    f"sentinel failover-timeout {SERVICE} 5000\n"
                    f"sentinel parallel-syncs {SERVICE} 1\n")
    server = ServerProcess([_binary(), str(conf), "--sentinel"], log_path=folder / "sentinel.log")
    server.start()
    stack.callback(server.stop)
    wait_for_port(port, timeout=15.0)
    return server


def _settled(topology: SentinelTopology) -> bool:
    """Every sentinel sees the primary, the replica and the two other sentinels."""
    for port in topology.sentinel_ports:
        fields = _cli(port, "SENTINEL", "master", SERVICE).split()
        info = dict(zip(fields[::2], fields[1::2], strict=False))
        if info.get("num-slaves") != "1" or info.get("num-other-sentinels") != "2":
            return False
    return True


@contextmanager
def redis_sentinel(base_dir: Path, *, timeout: float = 30.0) -> Iterator[SentinelTopology]:
    """Start primary, replica and three sentinels; yield once the sentinels know each other."""
    with ExitStack() as stack:
        primary_port, replica_port = free_port(), free_port()
        topology = SentinelTopology(primary_port, replica_port, tuple(free_port() for _ in range(3)))
        topology.servers[primary_port] = _data_node(stack, base_dir / "primary", primary_port)
        topology.servers[replica_port] = _data_node(stack, base_dir / "replica", replica_port,
                                                    "--replicaof", "127.0.0.1", str(primary_port))
        for i, port in enumerate(topology.sentinel_ports):
            topology.servers[port] = _sentinel(stack, base_dir / f"sentinel{i}", port, primary_port)
        deadline = time.monotonic() + timeout
        while not _settled(topology):  # hello messages every 2 s: the sentinels find each other
            if time.monotonic() > deadline:
                raise TimeoutError("the sentinels did not discover the replica and each other")
            time.sleep(0.2)
        yield topology
