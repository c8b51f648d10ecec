"""One source: the chart's gateway.yaml, rules and dashboards are the repository's own files, every
values key is documented, and the HPA's custom metric is the one the adapter rule serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.support import chart

ROOT = chart.ROOT
_KEY = re.compile(r"^( *)([A-Za-z0-9_.\-/]+):(?: |$)")


def _flat_keys(tree: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(tree, dict):
        for k, v in tree.items():
            keys.add(prefix + k)
            keys |= _flat_keys(v, f"{prefix}{k}.")
    return keys


def _documented_keys(text: str) -> tuple[set[str], list[str]]:
    """Keys found line by line (path from indentation) and those without a comment line just above."""
    keys: set[str] = set()
    undocumented: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    previous = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if (m := _KEY.match(line)) and not line.lstrip().startswith("#"):
            indent, key = len(m.group(1)), m.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = ".".join([k for _, k in stack] + [key])
            keys.add(path)
            if not previous.lstrip().startswith("#"):
                undocumented.append(path)
            stack.append((indent, key))
        previous = line
    return keys, undocumented


def test_every_values_key_has_a_comment() -> None:
    text = (chart.CHART / "values.yaml").read_text()
    seen, undocumented = _documented_keys(text)
    assert not undocumented, f"values.yaml keys without a comment line above: {undocumented}"
    assert seen == _flat_keys(yaml.safe_load(text))  # no key hidden in a flow mapping


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


def test_the_keda_trigger_names_the_pricing_stream(objects: list[chart.Obj]) -> None:
    from legacy_adapters.redis_keys import GROUP, QueueKeys

    [trigger] = chart.of_kind(objects, "ScaledObject")[0]["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == QueueKeys().stream
    assert trigger["metadata"]["consumerGroup"] == GROUP
    values = yaml.safe_load(Path(chart.CHART / "values.yaml").read_text())
    assert trigger["metadata"]["databaseIndex"] == str(values["redis"]["pricingDb"])


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
