"""bench.policies --topologies: which clients each topology gets, and the side-by-side lines."""

from __future__ import annotations

from bench.policy_topologies import hot_paths, summary


def test_the_pipe_is_measured_on_single_redis_only() -> None:
    assert hot_paths("single", "both") == ["pipe", "redis-py"]
    assert hot_paths("single", "pipe") == ["pipe"]
    assert hot_paths("sentinel", "both") == ["redis-py"]
    assert hot_paths("cluster", "pipe") == ["redis-py"]


def test_ratios_are_to_single_with_the_same_client_and_to_the_pipe() -> None:
    row = {"ratio": 0.5, "p50": 1.0, "gw_us": 500.0, "idle_ms": 2.0}
    lines = summary({"single/pipe": {**row, "rps": 1000.0, "redis_us": 40.0},
                     "single/redis-py": {**row, "rps": 800.0, "redis_us": 50.0},
                     "cluster/redis-py": {**row, "rps": 400.0, "redis_us": 20.0}})
    cluster = lines[3].split()
    assert cluster[:4] == ["cluster/redis-py", "400", "0.50", "0.40"]  # vs single/redis-py, vs the pipe
    assert cluster[-2:] == ["50,000", "2.0"]  # 1e6 / 20 µs per request; idle Redis CPU ms/s
