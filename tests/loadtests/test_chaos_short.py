"""`make chaos`, short: two faults under the load mix on a shifted platform, nothing accepted lost.

Runs ``python -m loadtests.chaos --short`` as a child process (Locust monkey-patches the stdlib;
the harness starts and stops its own platform by PID) with its report and JSON in ``tmp_path``.
Asserts the loss accounting only — no timing: every acceptance the clients were told about is in
the systems' records exactly once, and every fault window did accept work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_two_faults_under_load_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    out = tmp_path / "resilience.md"
    done = subprocess.run([sys.executable, "-m", "loadtests.chaos", "--short", "--out", str(out),
                           "--reports", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=400)
    reports = sorted(tmp_path.glob("chaos-2*.json"))
    assert reports, f"no JSON report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    data = json.loads(reports[-1].read_text())
    findings = {k: v for k, v in data["findings"].items() if isinstance(v, list) and v and k != "notes"}
    assert data["totals"] == {"lost": 0, "duplicates": 0}, findings
    assert done.returncode == 0, done.stdout[-3000:]
    assert [row["fault"] for row in data["rows"]] == ["relay-kill", "mes-kill"]
    for row in data["rows"]:
        assert row["accepted"]["crm"] > 0, row
        assert row["accepted"]["orders"] > 0, row
    assert "| `relay-kill` |" in out.read_text()
