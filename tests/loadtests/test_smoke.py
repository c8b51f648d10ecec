"""Smoke run of every load-test scenario against a real (small) platform, both targets.

Locust runs as a child process (it monkey-patches the standard library with gevent, which must
not happen inside pytest) with the smoke shape: a handful of users, think times x0.1, ~10 s per
target. The thresholds are the real ``loadtests/thresholds.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.partner_keys import ensure_partner_keys
from loadtests.runner import run_locust
from tests.loadtests.stack import smoke_stack

PLATFORM_ENDPOINTS = {
    "partner GET /orders", "partner POST /orders", "partner POST /quotes", "partner GET /quotes/{id}",
    "partner quote turnaround", "operator GET /orders?status", "operator GET /orders/{id}",
    "operator POST /orders/{id}/status", "crm POST /orders", "crm GET /orders/{id}",
}
LEGACY_ENDPOINTS = (PLATFORM_ENDPOINTS - {"partner POST /quotes", "partner GET /quotes/{id}"}) | {
    "partner POST /price"}
SMOKE_ENV = {"LOADTEST_THINK_SCALE": "0.1", "LOADTEST_PARTNERS": "2", "LOADTEST_MAX_REQUESTS": "5000"}


def _requests_by_endpoint(summary: dict | None) -> dict[str, int]:
    assert summary is not None, "locust wrote no summary"
    return {e["name"]: e["requests"] for e in summary["endpoints"]}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_scenario_passes_its_thresholds_on_both_targets(tmp_path: Path, pg_dsn: str) -> None:
    with smoke_stack(tmp_path, pg_dsn) as stack:
        keys = ensure_partner_keys(stack.key_store, 2)
        runs = {
            "platform": (PLATFORM_ENDPOINTS, "12"),
            "legacy": (LEGACY_ENDPOINTS, "8"),
        }
        for target, (endpoints, seconds) in runs.items():
            env = {**SMOKE_ENV, **stack.env(), "LOADTEST_TARGET": target, "LOADTEST_SMOKE_DURATION": seconds,
                   "LOADTEST_PARTNER_KEYS_FILE": str(keys)}
            result = run_locust(shape="smoke", env=env, reports=tmp_path / "reports", label=target,
                                quiet=True)
            assert result.exit_code == 0, f"{target}:\n{result.output[-4000:]}"
            counts = _requests_by_endpoint(result.summary)
            silent = sorted(e for e in endpoints if counts.get(e, 0) == 0)
            assert not silent, f"{target}: no requests for {silent}\n{result.output[-4000:]}"
