"""Graphs of the console pages (and Grafana) that only count errors or rare events draw a 0 line on
a healthy, idle platform instead of "No timeseries returned": their series exist from start-up.

An idle platform of its own (the legacy MES, its probing sidecar, the gateway with the shipped
config/gateway.yaml), scraped before any request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import yaml

from contracts.lifecycle import TRANSITIONS
from devstack import PostgresServer, RedisServer
from devstack.ports import free_port, wait_for_port
from devstack.process import wait_ready
from tests.loadtests.stack import gateway_config
from tests.stack.test_alerts_counters_at_startup import Series, _fresh_database, _python, _scrape

#: metric → label → values that must all be exported at 0 before the first event
AT_STARTUP = {
    "gateway_cache_requests_total": {"result": {"hit", "stale", "stale_if_error", "collapsed", "miss"}},
    "gateway_cache_collapsed_total": {},
    "gateway_health_checks_total": {"outcome": {"success", "failure"}},
    "gateway_upstream_ejections_total": {},
    "sidecar_upstream_errors_total": {"reason": {"connect_error", "timeout", "reset"}},
    "pricing_cache_hits_total": {"kind": {"exact", "geometric"}, "via": {"cache", "inflight"}},
    "orders_status_changes_total": {"to": {t.value for targets in TRANSITIONS.values() for t in targets}},
}


@pytest.fixture(scope="module")
def idle_scrapes(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> Iterator[Series]:
    tmp = tmp_path_factory.mktemp("console-series")
    logs = tmp / "logs"
    logs.mkdir()
    dsn = _fresh_database(pg_server, "console_series")
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(tmp / "redis"))
        port = {name: free_port() for name in ("mes", "sidecar", "admin")}
        _python(stack, logs, "mes-1", "-m", "legacy_sim", "mes", "--port", str(port["mes"]), "--dsn", dsn,
                "--instance-id", "mes-1")
        wait_for_port(port["mes"], timeout=30)
        _python(stack, logs, "sidecar-mes-1", "-m", "sidecar", "--kind", "mes", "--instance-id", "mes-1",
                "--listen", f"127.0.0.1:{port['sidecar']}", "--admin", f"127.0.0.1:{port['admin']}",
                "--upstream", f"http://127.0.0.1:{port['mes']}", "--dsn", dsn)
        wait_for_port(port["admin"], timeout=30)
        sidecar = f"http://127.0.0.1:{port['sidecar']}"
        cfg = gateway_config(tmp, mes=sidecar, crm=sidecar, redis_base=redis.url.rsplit("/", 1)[0],
                             store=tmp / "api-keys.json")
        (tmp / "gateway.yaml").write_text(yaml.safe_dump(cfg))
        admin = f"http://127.0.0.1:{cfg['admin']['port']}"
        gateway = _python(stack, logs, "gateway", "-m", "gateway", "--config", str(tmp / "gateway.yaml"),
                          "--workers", "1")
        wait_ready(f"{admin}/readyz", gateway, timeout=60)
        yield [sample for url in (f"http://127.0.0.1:{port['mes']}/metrics",
                                  f"http://127.0.0.1:{port['admin']}/metrics", f"{admin}/metrics")
               for sample in _scrape(url)]


@pytest.mark.parametrize("name", sorted(AT_STARTUP))
def test_event_counters_of_the_dashboards_exist_at_zero_before_any_event(
        idle_scrapes: Series, name: str) -> None:
    samples = [labels for n, labels in idle_scrapes if n == name]
    assert samples, f"{name}: no series before the first event"
    for label, values in AT_STARTUP[name].items():
        assert values <= {labels.get(label) for labels in samples}, f"{name}: {label}"
