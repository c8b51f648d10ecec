"""A freshly seeded, idle platform raises no alert: 20 minutes of rule evaluation with promtool.

The seeder fills a real PostgreSQL (3,000 active orders, as `make run`'s README line; fewer archived
ones, which the age probes do not read), the sidecar's business probe reads it once, and the gauges it
would export become promtool input series as Prometheus would scrape them from the probing sidecar:
counts held constant, ages growing by a minute each minute, no new orders after the first minute.
Every rule file is evaluated for 20 minutes; ``ALERTS`` (pending or firing) must stay empty.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from contracts.lifecycle import ACTIVE_STATUS_NAMES as ACTIVE_STATUSES
from legacy_sim.seed import seed
from sidecar.db import open_readonly_pool
from sidecar.probe_runner import ProbeRunner
from sidecar.probes import BusinessProbes
from tests.stack.stack_support import INSTALL_HINT, RULES

MINUTES = 20
#: What Prometheus adds to the probing sidecar's series (prometheus/prometheus.yml, job sidecar).
TARGET_LABELS = {"job": "sidecar", "instance": "127.0.0.1:9121", "service": "sidecar"}
PROBED = ("orders_by_status", "orders_oldest_age_seconds", "orders_new_per_minute",
          "pricing_calculations_in_progress")


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **TARGET_LABELS}.items()))
    return f"{name}{{{inner}}}"


def _values(name: str, value: float) -> str:
    """promtool's expanding notation for one sample a minute, MINUTES + 1 samples."""
    if name == "orders_oldest_age_seconds" and value > 0:
        return f"{value:.0f}+60x{MINUTES}"  # nobody touches the orders: they age in real time
    if name == "orders_new_per_minute":
        return f"{value:g} 0x{MINUTES - 1}"  # the seed's own last minute, then an idle platform
    return f"{value:g}x{MINUTES}"


async def _probe_once(dsn: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    pool = await open_readonly_pool(dsn, instance="mes-1")
    try:
        await BusinessProbes(pool, ProbeRunner(kind="mes", instance="mes-1")).run_once()
    finally:
        await pool.close()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in REGISTRY.collect() for s in family.samples if s.name in PROBED}


@pytest.mark.slow
async def test_a_freshly_seeded_idle_platform_raises_no_alert_for_20_minutes(pg_dsn: str, tmp_path: Path
                                                                             ) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(INSTALL_HINT)
    await seed(pg_dsn, orders=20_000, active=3_000)
    probed = await _probe_once(pg_dsn)
    ages = {dict(labels)["status"]: v for (name, labels), v in probed.items()
            if name == "orders_oldest_age_seconds"}
    assert set(ages) == set(ACTIVE_STATUSES)  # every active status has orders: the test is not vacuous
    assert all(age > 0 for age in ages.values())

    unit = {
        "rule_files": [str(path) for path in sorted(RULES.glob("*.yml"))],
        "evaluation_interval": "1m",
        "tests": [{
            "name": "seeded and idle",
            "interval": "1m",
            "input_series": [{"series": _series(name, dict(labels)), "values": _values(name, value)}
                             for (name, labels), value in sorted(probed.items())],
            "alert_rule_test": [{"eval_time": f"{MINUTES}m", "alertname": "OrdersStuck", "exp_alerts": []}],
            # pending counts too: one evaluation of every alert at every minute of the 20
            "promql_expr_test": [{"expr": f"count_over_time(ALERTS[{MINUTES + 1}m])",
                                  "eval_time": f"{MINUTES}m", "exp_samples": []}],
        }],
    }
    path = tmp_path / "seeded_idle_test.yml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False))
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"oldest ages after seeding: {ages}\n{done.stdout}{done.stderr}"
