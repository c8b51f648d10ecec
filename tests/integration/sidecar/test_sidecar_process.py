"""``python -m sidecar`` as a real process: serves, exports, exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess
from tests.support.fake_upstream import fake_upstream

ROOT = Path(__file__).parents[3]


def test_bad_option_exits_2_naming_it() -> None:
    argv = [sys.executable, "-m", "sidecar", "--kind", "crm", "--upstream", "http://h:1", "--dsn", "postgresql://h/d"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 2
    assert "--dsn" in done.stderr


async def test_process_proxies_exports_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    listen, admin = free_port(), free_port()
    async with fake_upstream() as up:
        proc = ServerProcess([sys.executable, "-m", "sidecar", "--kind", "crm", "--upstream", up.url,
                              "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
                              "--instance-id", "crm-p"], log_path=tmp_path / "sidecar.log")
        proc.start()
        try:
            wait_for_port(listen, timeout=20)
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{listen}/orders/CRM-1") as resp:
                    assert resp.status == 404  # the fake upstream's answer, relayed
                async with s.get(f"http://127.0.0.1:{admin}/metrics") as resp:
                    text = await resp.text()
                async with s.get(f"http://127.0.0.1:{admin}/readyz") as resp:
                    assert resp.status == 200
            assert ('sidecar_requests_total{kind="crm",legacy_instance="crm-p",method="GET",'
                    'route="/orders/{id}",status_class="4xx"} 1.0') in text
        finally:
            proc.stop(signal.SIGTERM)
        assert proc.proc is not None
        assert proc.proc.returncode == 0
    lines = [json.loads(line) for line in (tmp_path / "sidecar.log").read_text().splitlines()]
    access = [li for li in lines if li.get("event.dataset") == "sidecar.access"]
    assert access
    assert access[0]["service.name"] == "sidecar-crm"
    assert access[0]["sidecar.route"] == "/orders/{id}"
