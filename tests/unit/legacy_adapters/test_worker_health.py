"""A pricing worker's probes decide from stamps its loop keeps (legacy_adapters/worker_health.py)."""

from __future__ import annotations

import asyncio

import pytest

from legacy_adapters.worker_health import WorkerHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_live_until_the_loop_stops_stamping() -> None:
    clock = Clock()
    health = WorkerHealth(stall_after=15, stale_after=20, clock=clock)
    assert health.liveness() is None
    clock.now += 15
    assert health.liveness() is None
    clock.now += 1
    assert health.liveness() == "event loop stalled for 16 s (> 15 s)"
    health.loop_ticked()
    assert health.liveness() is None


def test_ready_only_after_a_recent_heartbeat() -> None:
    clock = Clock()
    health = WorkerHealth(stall_after=15, stale_after=20, clock=clock)
    assert health.readiness() == "no heartbeat to Redis yet"
    health.heartbeat_succeeded()
    assert health.readiness() is None
    clock.now += 21
    health.loop_ticked()
    assert health.readiness() == "last heartbeat to Redis 21 s ago (> 20 s)"


def test_not_ready_when_the_loop_is_stalled() -> None:
    clock = Clock()
    health = WorkerHealth(stall_after=5, stale_after=20, clock=clock)
    health.heartbeat_succeeded()
    clock.now += 6
    assert health.readiness() == "event loop stalled for 6 s (> 5 s)"


async def test_watch_loop_stamps_until_stopped() -> None:
    clock = Clock()
    health = WorkerHealth(stall_after=1, stale_after=1, clock=clock)
    clock.now += 5
    assert health.liveness() is not None
    stop = asyncio.Event()
    task = asyncio.create_task(health.watch_loop(stop, period=0.01))
    await asyncio.sleep(0)  # one turn: the first stamp
    assert health.liveness() is None
    stop.set()
    await asyncio.wait_for(task, 1)


def test_the_probe_paths() -> None:
    health = WorkerHealth()
    assert set(health.checks()) == {"/healthz", "/readyz"}


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        WorkerHealth(stall_after=0)
