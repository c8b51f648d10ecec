"""`make run` restarts a SIGKILLed pricing worker and keeps serving; a crash loop stops it all (issue 18).

The real ``python -m devstack run`` (what `make run` runs) as a child process, with every port
moved by a free offset (``MES_EDGE_PORT_OFFSET``) and its state in a temporary run dir. Before
the supervisor, the first SIGKILL stopped the whole platform about a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from devstack.platform import Ports
from tests.support.make_run import ROOT, free_offset
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _ours(pid: int, run_dir: Path) -> bool:
    """True if ``pid`` is a process of this test's platform (its environment names our run dir)."""
    try:
        return f"MES_EDGE_RUN_DIR={run_dir}".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
        return int(resp.status)


async def test_make_run_restarts_a_killed_pricing_worker_then_stops_when_it_keeps_crashing(
    tmp_path: Path,
) -> None:
    offset = free_offset()
    ports = Ports().shifted(offset)
    run_dir = tmp_path / "run"
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = {**os.environ, "MES_EDGE_RUN_DIR": str(run_dir), "MES_EDGE_PORT_OFFSET": str(offset),
           "MES_EDGE_MAX_RESTARTS": "1"}  # the second crash within 60 s is a crash loop
    with out.open("wb") as stdout, err.open("wb") as stderr:
        make_run = subprocess.Popen([sys.executable, "-m", "devstack", "run"], cwd=ROOT, env=env,
                                    stdout=stdout, stderr=stderr, start_new_session=True)
    pids: dict[str, int] = {}

    def printed(pattern: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            if make_run.poll() is not None:
                raise AssertionError(f"make run exited {make_run.returncode}:\n{out.read_text()}\n"
                                     f"{err.read_text()}")
            return re.search(pattern, out.read_text()) is not None
        return check

    async def worker_metrics_answer() -> bool:
        try:
            return await asyncio.to_thread(_get, f"http://127.0.0.1:{ports.pricing_metrics}/metrics") == 200
        except OSError:
            return False

    try:
        await eventually(printed(r"processes: .*\n"), timeout=300, what="make run is up")
        line = re.search(r"processes: (.*)\n", out.read_text())
        assert line is not None
        pids = {name: int(pid) for name, pid in (item.split("=") for item in line.group(1).split(", "))}
        first = pids["pricing-worker-1"]

        os.kill(first, signal.SIGKILL)
        await eventually(printed(r"pricing-worker-1 restarted \(pid \d+, restart 1\)"), timeout=60,
                         what="the killed worker is restarted")
        restarted = re.search(r"pricing-worker-1 restarted \(pid (\d+)", out.read_text())
        assert restarted is not None
        second = int(restarted.group(1))
        assert second != first
        assert f"pricing-worker-1 (pid {first}) exited with code -9; restarting it in " in out.read_text()
        # the platform keeps serving, and the new worker is up (its metrics port answers)
        assert await asyncio.to_thread(_get, f"http://127.0.0.1:{ports.internal}/orders?per_page=1") == 200
        await eventually(worker_metrics_answer, timeout=60, what="the restarted worker serves its metrics")
        status = json.loads((run_dir / "children.json").read_text())
        assert status["pricing-worker-1"]["restarts"] == 1
        assert status["pricing-worker-1"]["pid"] == second
        assert make_run.poll() is None

        os.kill(second, signal.SIGKILL)  # a second crash within 60 s: over MES_EDGE_MAX_RESTARTS=1
        code = await asyncio.to_thread(make_run.wait, 120)
        assert code == 1
        message = err.read_text()
        assert "pricing-worker-1 keeps crashing: it exited 2 times within 60 s" in message, message
        assert str(run_dir / "logs" / "pricing-worker-1.log") in message  # where its last output is
        assert [name for name, pid in pids.items() if _running(pid)] == []  # everything stopped
    finally:
        if make_run.poll() is None:
            make_run.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                make_run.wait(120)
        for pid in pids.values():
            if _running(pid) and _ours(pid, run_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
