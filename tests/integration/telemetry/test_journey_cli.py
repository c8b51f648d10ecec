"""``python -m telemetry order-journey`` as on-call runs it: a real process over a log directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "telemetry", "order-journey", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_prints_the_timeline_and_exits_0_or_1(tmp_path: Path) -> None:
    (tmp_path / "gateway-access.log").write_text(json.dumps({
        "@timestamp": "2026-03-02T10:00:00.100+00:00", "service.name": "gateway",
        "message": "POST /partner/v1/orders 201", "http.request.id": "req-1", "trace.id": TRACE}) + "\n")
    (tmp_path / "mes-1.log").write_text("not json\n" + json.dumps({
        "@timestamp": "2026-03-02T10:00:00.050+00:00", "service.name": "legacy-mes",
        "message": "order 42 created", "event.action": "order-created", "order.id": 42,
        "order.status.new": "SUBMITTED", "http.request.id": "req-1", "trace.id": TRACE}) + "\n")
    found = run("42", "--logs", str(tmp_path))
    assert found.returncode == 0, found.stderr
    assert found.stdout.index("order-created") < found.stdout.index("POST /partner/v1/orders 201")
    assert f"/trace/{TRACE}" in found.stdout
    missing = run("43", "--logs", str(tmp_path))
    assert missing.returncode == 1
    assert "no log line with order.id=43" in missing.stderr


def test_cli_refuses_files_and_elasticsearch_together(tmp_path: Path) -> None:
    both = run("42", "--logs", str(tmp_path), "--es-url", "http://127.0.0.1:9")
    assert both.returncode == 2
    assert "not both" in both.stderr
