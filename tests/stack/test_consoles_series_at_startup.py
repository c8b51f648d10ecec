"""Graphs of the console pages (and Grafana) that only count errors or rare events draw a 0 line on
a healthy, idle platform instead of "No timeseries returned": their series exist from start-up.

Uses the idle platform of test_alerts_counters_at_startup (every process type, shipped gateway
config, scraped before any request).
"""

from __future__ import annotations

import pytest

from legacy_sim.lifecycle import TRANSITIONS
from tests.stack.test_alerts_counters_at_startup import Series, scrapes

__all__ = ["scrapes"]  # the module-scoped fixture, shared by name

#: metric → label → values that must all be exported at 0 before the first event
AT_STARTUP = {
    "gateway_cache_requests_total": {"result": {"hit", "stale", "stale_if_error", "collapsed", "miss"}},
    "gateway_cache_collapsed_total": {},
    "gateway_health_checks_total": {"outcome": {"success", "failure"}},
    "gateway_upstream_ejections_total": {},
    "sidecar_upstream_errors_total": {"reason": {"connect_error", "timeout", "reset"}},
    "pricing_cache_hits_total": {"kind": {"exact", "geometric"}, "via": {"cache", "inflight"}},
    "pricing_calculations_in_progress": {"legacy_instance": {"mes-1"}},  # the probing sidecar's own
    "orders_status_changes_total": {"to": {t.value for targets in TRANSITIONS.values() for t in targets}},
}


@pytest.mark.parametrize("name", sorted(AT_STARTUP))
def test_event_counters_of_the_dashboards_exist_at_zero_before_any_event(
        scrapes: dict[str, Series], name: str) -> None:
    samples = [(n, labels) for series in scrapes.values() for n, labels in series if n == name]
    assert samples, f"{name}: no series before the first event"
    for label, values in AT_STARTUP[name].items():
        assert values <= {labels.get(label) for _, labels in samples}, f"{name}: {label}"
