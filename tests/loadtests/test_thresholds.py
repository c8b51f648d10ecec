"""The thresholds file parses and its evaluation treats 429/503 apart from failures."""

from __future__ import annotations

import pytest

from loadtests import thresholds
from loadtests.settings import SettingsError, load
from loadtests.thresholds import EndpointResult


def _result(name: str, *, requests: int = 100, failures: int = 0, shed: int = 0, p95: float = 10.0):
    return EndpointResult(name=name, requests=requests, failures=failures, shed=shed, p50_ms=p95 / 2,
                          p95_ms=p95, rps=1.0)


def _failed(checks: list[thresholds.Check]) -> list[str]:
    return [f"{c.scenario}: {c.what}" for c in checks if not c.passed]


def test_shipped_thresholds_cover_every_scenario():
    limits = thresholds.load()
    assert set(limits) == {"partner", "operator", "crm"}
    assert all(t.p95_ms for t in limits.values())


def test_partner_shed_counts_against_the_shed_share_not_the_failure_ratio():
    checks = thresholds.evaluate([_result("partner GET /orders", shed=4, failures=0)], thresholds.load(),
                                 scenarios=["partner"])
    assert _failed(checks) == []
    checks = thresholds.evaluate([_result("partner GET /orders", shed=6)], thresholds.load(),
                                 scenarios=["partner"])
    assert _failed(checks) == ["partner: 429/503 share"]


def test_slow_endpoint_and_silent_scenario_fail():
    checks = thresholds.evaluate([_result("operator GET /orders?status", p95=2500)], thresholds.load(),
                                 scenarios=["operator", "crm"])
    assert _failed(checks) == ["operator: p95 ms operator GET /orders?status", "crm: requests"]


def test_targets_other_than_loopback_are_refused():
    with pytest.raises(SettingsError, match="loopback"):
        load({"LOADTEST_MES_URLS": "http://10.0.0.5:9101"})


def test_env_overrides_weights_and_think_times():
    cfg = load({"LOADTEST_WEIGHTS": "partner=1,crm=0", "LOADTEST_THINK": "operator=1-2"})
    assert (cfg.users["partner"].weight, cfg.users["crm"].weight) == (1, 0)
    assert cfg.users["operator"].think == (1.0, 2.0)
