"""The Redis topologies ``bench.policies --topologies`` compares, and the side-by-side summary.

``single``: one ``redis-server`` (devstack's); ``sentinel``: 1 primary, 1 replica, 3 sentinels;
``cluster``: 3 primaries + 3 replicas — the starters the failover tests and ``bench.failover``
use, each on ephemeral ports. ``pids()`` are every Redis process of the topology (sentinels and
replicas included: what the topology costs), read from /proc/<pid>/stat for CPU time.
The hand pipe speaks to one address only, so it is measured on ``single`` only (beside redis-py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import group_cpu_seconds
from devstack.redis import RedisServer
from devstack.redis_cluster import redis_cluster
from devstack.redis_sentinel import redis_sentinel

TOPOLOGIES = ("single", "sentinel", "cluster")


@dataclass(frozen=True, slots=True)
class RedisUnderTest:
    spec: str
    pids: Callable[[], list[int]]

    def cpu_seconds(self) -> float:
        return sum(group_cpu_seconds(pid) for pid in self.pids())


@contextmanager
def started(topology: str, base_dir: Path) -> Iterator[RedisUnderTest]:
    """Start ``topology`` in ``base_dir``; stop every server by PID on exit."""
    if topology == "single":
        with RedisServer(base_dir / "redis") as server:
            assert server.pid is not None
            pid = server.pid
            yield RedisUnderTest(server.url, lambda: [pid])
    elif topology == "sentinel":
        with redis_sentinel(base_dir / "sentinel") as sentinel:
            yield RedisUnderTest(sentinel.url, sentinel.pids)
    elif topology == "cluster":
        with redis_cluster(base_dir / "cluster", replicas=1) as nodes:
            yield RedisUnderTest(nodes.spec, nodes.pids)
    else:
        raise ValueError(f"unknown topology {topology!r}: one of {', '.join(TOPOLOGIES)}")


def hot_paths(topology: str, requested: str) -> list[str]:
    """The clients measured on ``topology``: both on ``single``, redis-py elsewhere (no pipe there)."""
    if topology != "single":
        return ["redis-py"]
    return ["pipe", "redis-py"] if requested == "both" else [requested]


def summary(rows: dict[str, dict[str, float]]) -> list[str]:
    """One line per ``<topology>/<client>``: saturation req/s and its ratios to single's (same client,
    and the pipe), partner/plain, steady p50, CPU per request, req/s per Redis core, and the Redis
    CPU the topology burns without policy traffic (during the plain route's saturation run)."""
    lines = [f"{'variant':<18}{'req/s':>7}{'vs single':>10}{'vs pipe':>8}{'/plain':>7}{'p50 ms':>8}"
             f"{'gw µs/req':>10}{'redis µs/req':>13}{'req/s per redis core':>21}{'idle redis ms/s':>16}"]
    pipe = rows.get("single/pipe")
    for name, row in rows.items():
        same = rows.get(f"single/{name.split('/')[1]}")
        vs = f"{row['rps'] / same['rps']:.2f}" if same else "-"
        vs_pipe = f"{row['rps'] / pipe['rps']:.2f}" if pipe else "-"
        per_core = f"{1e6 / row['redis_us']:,.0f}" if row["redis_us"] > 0 else "-"
        lines.append(f"{name:<18}{row['rps']:>7.0f}{vs:>10}{vs_pipe:>8}{row['ratio']:>7.2f}{row['p50']:>8.2f}"
                     f"{row['gw_us']:>10.0f}{row['redis_us']:>13.1f}{per_core:>21}{row['idle_ms']:>16.1f}")
    return lines
