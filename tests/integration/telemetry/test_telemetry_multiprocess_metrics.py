"""Multiprocess metrics: real child processes write, metrics_registry() sums them, /metrics serves it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY

from telemetry.metrics import (
    mark_process_dead,
    metrics_app,
    metrics_registry,
    reset_multiprocess_dir,
    start_metrics_server,
)

WORKER = """
import os, sys
from prometheus_client import Counter, Gauge
jobs = Counter("telemetry_test_jobs_total", "Jobs done.", ["outcome"])
busy = Gauge("telemetry_test_busy_workers", "Busy workers.", multiprocess_mode="livesum")
jobs.labels(outcome="ok").inc(int(sys.argv[1]))
busy.set(1)
print(os.getpid())
"""
TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
def multiproc_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = reset_multiprocess_dir(tmp_path / "prom")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    return directory


def run_workers(directory: Path, increments: list[int]) -> list[int]:
    """Start one child per increment, concurrently, in multiprocess mode; return their pids."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    children = [subprocess.Popen([sys.executable, "-c", WORKER, str(n)], env=env, stdout=subprocess.PIPE,
                                 text=True) for n in increments]
    pids = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        pids.append(int(out))
    return pids


def test_without_multiproc_dir_the_default_registry_is_used(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics_registry() is REGISTRY


def test_collector_sums_counters_of_two_worker_processes(multiproc_dir):
    pids = run_workers(multiproc_dir, [3, 4])
    registry = metrics_registry()
    assert registry is not REGISTRY
    assert registry.get_sample_value("telemetry_test_jobs_total", {"outcome": "ok"}) == 7
    assert registry.get_sample_value("telemetry_test_busy_workers") == 2

    for pid in pids:
        mark_process_dead(pid)
    assert registry.get_sample_value("telemetry_test_jobs_total", {"outcome": "ok"}) == 7  # history stays
    assert not registry.get_sample_value("telemetry_test_busy_workers")  # live gauges of the dead go


def test_reset_multiprocess_dir_removes_stale_files(tmp_path):
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    assert list(reset_multiprocess_dir(directory).iterdir()) == []


async def test_metrics_app_serves_the_summed_registry_in_the_text_format(multiproc_dir):
    run_workers(multiproc_dir, [2, 5])
    async with TestServer(metrics_app()) as server, aiohttp.ClientSession(timeout=TIMEOUT) as client, \
            client.get(server.make_url("/metrics")) as response:
        body = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert 'telemetry_test_jobs_total{outcome="ok"} 7.0' in body


async def test_start_metrics_server_serves_metrics_from_a_thread(multiproc_dir):
    run_workers(multiproc_dir, [1])
    server, thread = start_metrics_server(0)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as client, \
                client.get(f"http://127.0.0.1:{server.server_port}/metrics") as response:
            body = await response.text()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert response.status == 200
    assert 'telemetry_test_jobs_total{outcome="ok"} 1.0' in body
