"""What a `python -m loadtests.capacity` run writes into the capacity model (loadtests/capacity_limits.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from loadtests import capacity, capacity_limits
from loadtests.capacity_report import Measurement
from loadtests.pg_activity import DbRate
from telemetry.capacity_model import CAPACITY_FILE, load_capacities
from telemetry.capacity_rules import RULES_FILE

IDLE = DbRate(seconds=1, transactions_per_s=0, rows_read_per_s=0)


def _step(users: int, passed: bool, requests: dict[str, int], seconds: float = 20.0) -> Measurement:
    endpoints = [{"name": n, "requests": r, "failures": 0, "shed": 0, "p50_ms": 1, "p95_ms": 2, "rps": 0}
                 for n, r in requests.items()]
    checks = [] if passed else [{"scenario": "partner", "what": "p95 ms partner POST /orders", "value": 1400,
                                 "limit": 1000, "passed": False}]
    return Measurement(target="legacy", shape="normal", users=users, duration=seconds,
                       summary={"passed": passed, "endpoints": endpoints, "checks": checks}, db=IDLE,
                       exit_code=0 if passed else 1, report_prefix=f"reports/capacity-legacy-normal-{users}")


MIX = {"partner GET /orders": 200, "operator GET /orders?status": 200, "partner quote turnaround": 100,
       "crm POST /orders": 100}


def test_mes_rps_counts_only_the_calls_that_reach_the_mes() -> None:
    assert capacity_limits.mes_rps(_step(40, True, MIX)) == 400 / 20


def test_the_largest_passing_legacy_step_is_the_mes_capacity_with_its_run() -> None:
    steps = [_step(40, True, MIX), _step(80, True, {k: 2 * v for k, v in MIX.items()}),
             _step(160, False, {k: 3 * v for k, v in MIX.items()})]
    found = capacity_limits.measured(steps, command="python -m loadtests.capacity",
                                     generated="2026-12-05 09:00")
    capacity = found["mes_rps"]
    assert capacity.value == 40.0
    assert "2026-12-05 09:00" in capacity.source
    assert "reports/capacity-legacy-normal-80" in capacity.source
    assert "160 users (60.0 req/s) failed: partner: p95 ms partner POST /orders" in capacity.method


def test_no_passing_step_measures_nothing() -> None:
    assert capacity_limits.measured([_step(40, False, MIX)], command="c", generated="g") == {}


def test_update_keeps_the_other_figures_and_renders_the_rules(tmp_path: Path) -> None:
    capacity_file, rules_file = tmp_path / "capacity.yml", tmp_path / "capacity-rules.yml"
    shutil.copy(CAPACITY_FILE, capacity_file)
    found = capacity_limits.measured([_step(40, True, MIX)], command="c", generated="g")
    assert capacity_limits.update(found, capacity_file=capacity_file, rules_file=rules_file) == ["mes_rps"]
    before, after = load_capacities(CAPACITY_FILE), load_capacities(capacity_file)
    assert after["mes_rps"].value == 20.0
    del after["mes_rps"], before["mes_rps"]
    assert after == before
    rules = [r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"]]
    [limit] = [r for r in rules
               if r.get("record") == "capacity:limit" and r["labels"]["resource"] == "mes_rps"]
    assert limit["expr"] == "vector(20)"
    assert RULES_FILE.read_text() != rules_file.read_text()


def test_docs_capacity_md_carries_the_model_section_naming_every_resource() -> None:
    from loadtests.capacity_report import MODEL
    from telemetry.capacity_model import REPO, RESOURCES

    section = MODEL.read_text().strip()
    assert section in (REPO / "docs" / "capacity.md").read_text(), "the model section of docs/capacity.md"
    for resource in RESOURCES:
        assert f"`{resource.name}`" in section, resource.name


def test_the_machine_load_is_said_next_to_the_figure() -> None:
    found = capacity_limits.measured([_step(40, True, MIX)], command="c", generated="g", load=(3.29, 8.42))
    assert "load average 3.3 -> 8.4 on a shared machine" in found["mes_rps"].method


def test_the_capacity_run_refuses_a_capacity_file_it_could_not_update_before_it_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file lacking a resource (an older copy) used to fail only after the whole run."""
    stale = tmp_path / "capacity.yml"
    stale.write_text("capacities: {gateway_rps: {value: 1, source: s, method: m}}\n")
    assert capacity.main(["--capacity-file", str(stale), "--admin-url", "http://127.0.0.1:1"]) == 2
    assert "missing" in capsys.readouterr().err
