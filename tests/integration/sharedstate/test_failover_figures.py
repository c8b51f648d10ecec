"""The short version of every bench.failover scenario: under steady load through two gateway
processes (rate-limited partner requests, quote jobs priced by real workers against the MES
stand-in, CRM orders relayed into the MES), a Sentinel primary SIGKILLed, a Cluster primary
SIGKILLed, and a slot migration with ``redis-cli --cluster reshard``: no 5xx through the gateways,
no quote job and no CRM order lost. Loss counts only: the timings are the bench's (docs/redis.md)
(once in six Cluster kills at load average 17 a gateway was still degraded 60 s later — not
reproduced, so not asserted here; the return to shared mode is what test_cluster_failover.py and
test_sentinel_failover.py assert)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.failover.report import report
from bench.failover.scenario import SHORT, run
from bench.failover.topologies import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_failover_under_load_loses_nothing_and_answers_no_5xx(scenario: str) -> None:
    # not tmp_path: PostgreSQL runs as user postgres, and every pytest session that starts makes
    # /tmp/pytest-of-root 0700 again (other sessions run on this machine): its own temporary folder
    with tempfile.TemporaryDirectory(prefix=f"failover-{scenario}-") as tmp:
        fig = await run(scenario, Path(tmp), SHORT)
    figures = report(fig)
    assert fig.statuses is not None
    assert {200, 429} <= set(fig.statuses["partner"]), figures  # the limit bites
    assert fig.server_errors == 0, figures
    assert min(fig.jobs, fig.crm_orders) > 0, figures
    assert (fig.lost_jobs, fig.failed_jobs) == (0, 0), figures
    assert (fig.lost_orders, fig.crm_ids_twice) == (0, 0), figures
    if scenario != "reshard":  # the kill reached the gateways (their return: test_*_failover.py)
        assert fig.degraded_episodes > 0, figures
