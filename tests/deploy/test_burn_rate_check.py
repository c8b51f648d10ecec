"""scripts/burn_rate_check.py, the pipeline's rollback gate, against a real Prometheus (Debian's):
it scrapes itself as `job="gateway"` in two namespaces, and a stand-in `PartnerApiErrorBudgetBurn`
fires for one namespace and stays pending for another. The gate passes the clean namespace only."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from collections.abc import Iterator

import pytest
import yaml

from devstack.monitoring import start_prometheus, wait_ready
from devstack.ports import free_port
from tests.support import chart
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow
SCRIPT = chart.ROOT / "scripts" / "burn_rate_check.py"
_spec = importlib.util.spec_from_file_location("burn_rate_check", SCRIPT)
assert _spec is not None
assert _spec.loader is not None
burn_rate_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(burn_rate_check)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    rules = {"groups": [{"name": "stand-in", "interval": "1s", "rules": [
        {"alert": "PartnerApiErrorBudgetBurn", "expr": 'vector(1)', "labels": {"namespace": "burning"}},
        {"alert": "PartnerApiErrorBudgetBurn", "expr": 'vector(1)', "for": "1h",
         "labels": {"namespace": "slow-burn"}}]}]}
    (root / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(root / "rules.yml")],
              "scrape_configs": [{"job_name": "gateway", "static_configs": [
                  {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": ns}}
                  for ns in ("mes-edge-staging", "burning", "slow-burn")]}]}
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = start_prometheus(root, port, root / "prometheus.yml")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/-/ready", proc)
        yield url
    finally:
        proc.stop()


def _gate(prometheus: str, namespace: str, bake: float = 1.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--prometheus", prometheus, "--namespace", namespace,
                           "--bake", str(bake), "--interval", "0.2"],
                          capture_output=True, text=True, timeout=60)


async def _settled(prometheus: str) -> None:
    """Every target scraped once and both stand-in alerts evaluated."""
    query = burn_rate_check.query

    async def ready() -> bool:
        up = await asyncio.to_thread(query, prometheus, 'up{job="gateway"} == 1')
        alerts = await asyncio.to_thread(query, prometheus, "ALERTS")
        return len(up) == 3 and {a["metric"]["alertstate"] for a in alerts} == {"firing", "pending"}

    await eventually(ready, timeout=30, what="Prometheus scraped its targets and evaluated the rules")


async def test_a_clean_namespace_passes(prometheus: str) -> None:
    await _settled(prometheus)
    proc = _gate(prometheus, "mes-edge-staging")
    assert proc.returncode == 0, proc.stderr
    assert "passed for mes-edge-staging" in proc.stdout


async def test_a_firing_burn_rate_alert_fails_the_release(prometheus: str) -> None:
    await _settled(prometheus)
    proc = _gate(prometheus, "burning", bake=30)  # fails at the first look, not after the bake
    assert proc.returncode == 1
    assert "PartnerApiErrorBudgetBurn is firing in burning" in proc.stderr


async def test_a_burn_still_pending_at_the_end_fails_the_release(prometheus: str) -> None:
    await _settled(prometheus)
    proc = _gate(prometheus, "slow-burn")
    assert proc.returncode == 1
    assert "pending in slow-burn" in proc.stderr


async def test_a_release_prometheus_does_not_scrape_fails(prometheus: str) -> None:
    await _settled(prometheus)
    proc = _gate(prometheus, "not-scraped")
    assert proc.returncode == 1
    assert "scrapes no gateway in not-scraped" in proc.stderr


def test_an_unreachable_prometheus_fails() -> None:
    proc = _gate(f"http://127.0.0.1:{free_port()}", "mes-edge-staging")
    assert proc.returncode == 1
    assert "cannot ask Prometheus" in proc.stderr
