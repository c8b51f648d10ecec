"""Every counter a rule reads with rate/increase is exported before its first event.

Each process type of `make run` is started the way `make run` starts it (legacy MES + CRM,
the MES sidecar with probes, events and relay, the CRM sidecar, a pricing worker, the MES
archiver, the gateway with the shipped config/gateway.yaml and two workers) on free ports,
and its /metrics is read once before any traffic. A counter born at 1 on its first event
makes ``increase()`` miss that event (the poison-message drill of issue 13 never fired), so
each one must be there already,
with the label values the rules select and the fixed reason sets below.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devstack import PostgresServer, RedisServer
from devstack.exporters import start_redis_exporter
from devstack.ports import free_port, wait_for_port
from devstack.postgres import pg_bin
from devstack.process import ServerProcess, wait_ready
from gateway.auth.startup_secrets import DEV_ENV
from tests.loadtests.stack import gateway_config
from tests.stack.alerts_counters import CounterRead, rule_counter_reads

pytestmark = pytest.mark.slow

Series = list[tuple[str, dict[str, str]]]

#: Label values known before any event, which must all be exported at 0 (name → label → values).
BOUNDED: dict[str, dict[str, set[str]]] = {
    "sidecar_relay_dead_letters_total": {"reason": {"poison", "rejected"}},
    "orders_crm_queue_reads_total": {"outcome": {"dead_letter"}},
    "sidecar_probe_errors_total": {"probe": {"active_orders", "terminal_orders", "new_orders", "pricing"}},
    "gateway_partner_scope_refusals_total": {
        "reason": {"foreign_item", "foreign_create", "too_large", "unreadable", "unbuffered"}},
    "gateway_cache_backend_errors_total": {"operation": {"lookup", "store", "bump", "lock", "events"}},
    "gateway_load_shed_total": {"priority": {"high", "normal", "low"},
                                "reason": {"queue_full", "wait_timeout", "evicted"}},
    "gateway_auth_failures_total": {"reason": {"missing", "invalid", "revoked", "forbidden"}},
    "gateway_upstream_requests_total": {"status_class": {"5xx", "connect_error", "timeout", "reset"}},
    "gateway_requests_total": {"status_class": {"5xx"}},
    "gateway_ratelimit_decisions_total": {"decision": {"allowed", "limited"}},
    "gateway_ratelimit_backend_errors_total": {"reason": {"timeout", "connection", "reply", "other"}},
    "mesdb_archiver_passes_total": {"outcome": {"ok", "error"}},
}

def _scrape(url: str) -> Series:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    return [(sample.name, dict(sample.labels))
            for family in text_string_to_metric_families(text) for sample in family.samples]


def _fresh_database(server: PostgresServer, name: str) -> str:
    subprocess.run([pg_bin("psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d",
                    "postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:{server.port}/{name}"


def _python(stack: ExitStack, logs: Path, name: str, *args: str, env: dict[str, str] | None = None
            ) -> ServerProcess:
    proc = ServerProcess([sys.executable, *args], log_path=logs / f"{name}.log",
                         env={**os.environ, DEV_ENV: "1", **(env or {})})
    proc.start()
    stack.callback(proc.stop)
    return proc


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer
            ) -> Iterator[dict[str, Series]]:
    """process → its /metrics samples, read before any request reached the platform."""
    tmp = tmp_path_factory.mktemp("counters")
    logs = tmp / "logs"
    logs.mkdir()
    dsn = _fresh_database(pg_server, "alerts_counters")
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(tmp / "redis"))
        names = ("mes", "crm", "mes_sc", "mes_adm", "crm_sc", "crm_adm", "worker", "archiver",
                 "redis_exporter")
        port = {name: free_port() for name in names}
        _python(stack, logs, "mes-1", "-m", "legacy_sim", "mes", "--port", str(port["mes"]), "--dsn", dsn,
                "--instance-id", "mes-1")
        _python(stack, logs, "crm", "-m", "legacy_sim", "crm", "--port", str(port["crm"]),
                "--redis-url", redis.url)
        for key in ("mes", "crm"):
            wait_for_port(port[key], timeout=30)
        sidecar = ["-m", "sidecar", "--kind"]
        _python(stack, logs, "sidecar-mes-1", *sidecar, "mes", "--instance-id", "mes-1",
                "--listen", f"127.0.0.1:{port['mes_sc']}", "--admin", f"127.0.0.1:{port['mes_adm']}",
                "--upstream", f"http://127.0.0.1:{port['mes']}", "--redis-url", redis.url,
                "--relay-redis-url", redis.url, "--dsn", dsn)
        _python(stack, logs, "sidecar-crm-1", *sidecar, "crm", "--instance-id", "crm-1",
                "--listen", f"127.0.0.1:{port['crm_sc']}", "--admin", f"127.0.0.1:{port['crm_adm']}",
                "--upstream", f"http://127.0.0.1:{port['crm']}")
        base = redis.url.rsplit("/", 1)[0]
        _python(stack, logs, "pricing-worker-1", "-m", "legacy_adapters.worker", "--redis-url", f"{base}/2",
                "--backend", f"http://127.0.0.1:{port['mes_sc']}", "--name", "pricing-worker-1",
                "--metrics-port", str(port["worker"]))
        # as make run starts it; the first pass may come before the scrape: every series exists anyway
        _python(stack, logs, "mesdb-archiver", "-m", "mesdb", "--dsn", dsn, "archive", "--every", "60",
                "--metrics-port", str(port["archiver"]))
        for key in ("mes_adm", "crm_adm", "worker", "archiver"):
            wait_for_port(port[key], timeout=30)
        cfg = gateway_config(tmp, mes=f"http://127.0.0.1:{port['mes_sc']}",
                             crm=f"http://127.0.0.1:{port['crm_sc']}", redis_base=base,
                             store=tmp / "api-keys.json")
        (tmp / "gateway.yaml").write_text(yaml.safe_dump(cfg))
        admin = f"http://127.0.0.1:{cfg['admin']['port']}"
        gateway = _python(stack, logs, "gateway", "-m", "gateway", "--config", str(tmp / "gateway.yaml"),
                          "--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(tmp / "gateway-metrics")})
        wait_ready(f"{admin}/readyz", gateway, timeout=60)
        # make run's Redis exporter (devstack/exporters.py): redis_commands_processed_total
        exporter = start_redis_exporter(logs, port["redis_exporter"], base)
        stack.callback(exporter.stop)
        wait_for_port(port["redis_exporter"], timeout=30)
        yield {
            "legacy-mes": _scrape(f"http://127.0.0.1:{port['mes']}/metrics"),
            "legacy-crm": _scrape(f"http://127.0.0.1:{port['crm']}/metrics"),
            "sidecar-mes": _scrape(f"http://127.0.0.1:{port['mes_adm']}/metrics"),
            "sidecar-crm": _scrape(f"http://127.0.0.1:{port['crm_adm']}/metrics"),
            "pricing-worker": _scrape(f"http://127.0.0.1:{port['worker']}/metrics"),
            "gateway": _scrape(f"{admin}/metrics"),
            "mesdb-archiver": _scrape(f"http://127.0.0.1:{port['archiver']}/metrics"),
            "redis-exporter": _scrape(f"http://127.0.0.1:{port['redis_exporter']}/metrics"),
        }


def _matches(labels: dict[str, str], matchers: tuple[tuple[str, str, str], ...]) -> bool:
    for label, op, value in matchers:
        actual = labels.get(label, "")
        full = re.fullmatch(value, actual) is not None
        if (op == "=" and actual != value) or (op == "!=" and actual == value) or (op == "=~" and not full) \
                or (op == "!~" and full):
            return False
    return True


def _all_series(scrapes: dict[str, Series]) -> Series:
    return [sample for series in scrapes.values() for sample in series]


def test_every_counter_a_rule_reads_with_rate_or_increase_exists_before_its_first_event(
        scrapes: dict[str, Series]) -> None:
    series = _all_series(scrapes)
    missing: dict[str, set[str]] = {}
    for read in rule_counter_reads():
        if not any(name == read.name and _matches(labels, read.matchers) for name, labels in series):
            missing.setdefault(_selector(read), set()).add(read.rule)
    assert not missing, f"counters read by rules but absent before any event: {missing}"


def test_every_known_reason_of_an_alerted_counter_is_exported_at_zero_from_start_up(
        scrapes: dict[str, Series]) -> None:
    series = _all_series(scrapes)
    absent = []
    for name, labels in BOUNDED.items():
        for label, values in labels.items():
            seen = {lbl.get(label) for n, lbl in series if n == name}
            absent += [f'{name}{{{label}="{value}"}}' for value in sorted(values - seen)]
    assert not absent


def _selector(read: CounterRead) -> str:
    inner = ",".join(f'{label}{op}"{value}"' for label, op, value in read.matchers)
    return f"{read.name}{{{inner}}}"
