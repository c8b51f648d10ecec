"""Two MES processes starting at once on one empty database both come up (schema advisory lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from devstack.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]


def test_two_instances_starting_at_once_both_come_up(pg_dsn: str, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "legacy_sim", "mes", "--port", str(port),
                               "--dsn", pg_dsn, "--instance-id", f"mes-{i}", "--pool-min", "1"],
                              cwd=ROOT, stdout=(tmp_path / f"mes-{i}.log").open("wb"),
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              start_new_session=True)
             for i, port in enumerate(ports, 1)]
    try:
        for i, port in enumerate(ports, 1):
            wait_for_port(port, timeout=20)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.status == 200, (tmp_path / f"mes-{i}.log").read_text()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=10) for proc in procs]
    assert codes == [0, 0]
