"""One source: the chart's gateway.yaml, rules and dashboards are the repository's own files, every
values key is documented, and the HPA's custom metric is the one the adapter rule serves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support import chart

ROOT = chart.ROOT


def _flat_keys(tree: Any, prefix: str = "") -> set[str]:
    """Every key path of values.yaml, minus the insides of free-form maps (label names as keys)."""
    keys: set[str] = set()
    if isinstance(tree, dict) and not any("/" in k for k in tree):
        for k, v in tree.items():
            keys.add(prefix + k)
            keys |= _flat_keys(v, f"{prefix}{k}.")
    return keys


def test_every_values_key_is_documented_and_in_the_schema() -> None:
    """scripts/chart_values_schema.py refuses a key without a comment line above it and checks that
    values.schema.json (which helm applies to every install) is what values.yaml makes."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "chart_values_schema.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((chart.CHART / "values.schema.json").read_text())
    assert _schema_keys(schema) == _flat_keys(yaml.safe_load((chart.CHART / "values.yaml").read_text()))


def _schema_keys(schema: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for k, sub in schema.get("properties", {}).items():
        keys |= {prefix + k} | _schema_keys(sub, f"{prefix}{k}.")
    return keys


def test_a_misspelt_value_is_refused() -> None:
    assert "additional properties 'replica' not allowed" in chart.render_failure({"gateway.replica": "3"})


def test_the_prometheus_rules_are_the_rule_files(objects: list[chart.Obj]) -> None:
    rendered = {r["metadata"]["annotations"]["mes-edge.io/source"]: r["spec"]["groups"]
                for r in chart.of_kind(objects, "PrometheusRule")}
    files = {f"prometheus/rules/{p.name}": yaml.safe_load(p.read_text())["groups"]
             for p in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))}
    assert rendered == files


def test_the_dashboards_are_the_grafana_files(objects: list[chart.Obj]) -> None:
    maps = [m for m in chart.of_kind(objects, "ConfigMap")
            if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    rendered = {name: json.loads(body) for m in maps for name, body in m["data"].items()}
    files = {p.name: json.loads(p.read_text()) for p in (ROOT / "grafana" / "dashboards").glob("*.json")}
    assert rendered == files


def test_the_gateway_config_is_config_gateway_yaml(objects: list[chart.Obj]) -> None:
    data = chart.named(objects, "ConfigMap", "mes-edge-gateway")["data"]["gateway.yaml"]
    assert data == (ROOT / "config" / "gateway.yaml").read_text().rstrip("\n")


def test_the_hpa_metric_is_served_by_the_adapter_rule(objects: list[chart.Obj]) -> None:
    adapter = yaml.safe_load((ROOT / "deploy" / "prometheus-adapter" / "values.yaml").read_text())
    [rule] = adapter["rules"]["custom"]
    hpa = chart.of_kind(objects, "HorizontalPodAutoscaler")[0]["spec"]
    [pods] = [m["pods"] for m in hpa["metrics"] if m["type"] == "Pods"]
    assert pods["metric"]["name"] == rule["name"]["as"]
    series = rule["seriesQuery"].split("{", 1)[0]
    assert f"`{series}`" in (ROOT / "docs" / "metrics-gateway.md").read_text()  # a documented metric


def test_the_keda_trigger_reads_the_queue_depth_the_gateways_publish(objects: list[chart.Obj]) -> None:
    """Not the stream's lag: fairly scheduled jobs wait in their partner's list until a worker takes
    them (docs/pricing.md), so the lag stays 0 under any backlog; pricing_queue_depth counts them
    (tests/integration/legacy_adapters/test_fair_scheduling.py), summed over the shards."""
    from legacy_adapters import metrics

    [trigger] = chart.of_kind(objects, "ScaledObject")[0]["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    gauge = metrics.QUEUE_DEPTH.describe()[0].name
    assert trigger["metadata"]["query"] == f'max({gauge}{{namespace="mes-edge"}})'
    assert "fair-scheduling lists" in metrics.QUEUE_DEPTH.describe()[0].documentation
    values = yaml.safe_load(Path(chart.CHART / "values.yaml").read_text())
    assert trigger["metadata"]["threshold"] == values["pricingWorker"]["keda"]["queuedPerWorker"]


def test_scraped_jobs_carry_the_names_the_rules_select(objects: list[chart.Obj]) -> None:
    """The rules were written against prometheus/prometheus.yml's job names (`up{job="gateway"}`):
    each monitor relabels its targets to the same job, whatever the operator would call them."""
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    relabelled = set()
    for mon in chart.of_kind(objects, "PodMonitor") + chart.of_kind(objects, "ServiceMonitor"):
        endpoints = mon["spec"].get("podMetricsEndpoints") or mon["spec"]["endpoints"]
        for endpoint in endpoints:
            [job] = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
            relabelled.add(job)
    assert relabelled == {"gateway", "sidecar", "pricing-workers"}
    assert relabelled <= jobs
    selected = set(re.findall(r'job="([\w-]+)"', "".join(
        p.read_text() for p in (ROOT / "prometheus" / "rules").glob("*.yml"))))
    assert selected <= relabelled


def test_exporter_monitors_scrape_as_the_capacity_models_jobs() -> None:
    """redis_exporter and elasticsearch_exporter are not the chart's: a ServiceMonitor each when
    their Service's labels are given, relabelled to the job names of prometheus/prometheus.yml."""
    objects = chart.render(set_values={"monitoring.exporters.redis.selector.app": "redis-exporter",
                                       "monitoring.exporters.elasticsearch.selector.app": "es-exporter",
                                       "monitoring.exporters.elasticsearch.namespace": "logging"})
    monitors = {m["metadata"]["name"]: m for m in chart.of_kind(objects, "ServiceMonitor")}
    redis, es = monitors["mes-edge-redis-exporter"], monitors["mes-edge-elasticsearch-exporter"]
    for monitor in (redis, es):
        chart.validate(monitor)
    assert redis["spec"]["selector"]["matchLabels"] == {"app": "redis-exporter"}
    assert "namespaceSelector" not in redis["spec"]
    assert es["spec"]["namespaceSelector"] == {"matchNames": ["logging"]}
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    for monitor, job in ((redis, "redis"), (es, "elasticsearch")):
        [relabel] = [r for r in monitor["spec"]["endpoints"][0]["relabelings"] if r["targetLabel"] == "job"]
        assert relabel["replacement"] == job in jobs
