"""Grafana provisioning and the generated dashboards (queries' metrics: test_metrics_exist.py)."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.stack.stack_support import (
    DASHBOARDS,
    REPO,
    dashboard_queries,
    family_name,
    iter_panels,
    load_dashboards,
    metric_names,
    recorded_names,
)
from tests.stack.test_elk import mapped_fields

PROVISIONING = REPO / "grafana" / "provisioning"
METRIC_SOURCES = (
    "gateway/metrics.py",
    "sidecar/metrics.py",
    "sidecar/relay/metrics.py",
    "legacy_sim/metrics.py",
    "legacy_adapters/metrics.py",
    "mesdb/metrics.py",
)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", REPO / "grafana" / "build_dashboards.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _datasource_uids() -> dict[str, str]:
    data = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())
    return {d["uid"]: d["type"] for d in data["datasources"]}


def test_checked_in_dashboards_equal_the_generator_output() -> None:
    generator = _generator()
    built = generator.build()
    assert set(built) == {p.name for p in DASHBOARDS.glob("*.json")}
    for name, model in built.items():
        assert (DASHBOARDS / name).read_text() == generator.render(model), (
            f"{name}: run grafana/build_dashboards.py"
        )


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashboards = list(load_dashboards().values())
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    assert len({d["title"] for d in dashboards}) == len(dashboards)


def test_provisioning_has_prometheus_elasticsearch_and_jaeger() -> None:
    assert _datasource_uids() == {
        "prometheus": "prometheus",
        "elasticsearch": "elasticsearch",
        "jaeger": "jaeger",
    }
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yaml").read_text())["providers"]
    assert providers[0]["options"]["path"].endswith("/mes-edge")


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_every_panel_has_a_provisioned_datasource_and_targets(path: Any) -> None:
    uids = _datasource_uids()
    dashboard = load_dashboards()[path]
    panels = list(iter_panels(dashboard))
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query (no empty panels)"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids
            assert target.get("expr") or target.get("query"), panel["title"]
        assert panel.get("description"), panel["title"]


def test_panels_link_to_traces_and_logs() -> None:
    for dashboard in load_dashboards().values():
        urls = [
            link["url"]
            for panel in iter_panels(dashboard)
            for link in panel.get("links", []) + panel["fieldConfig"]["defaults"].get("links", [])
        ]
        assert any("${jaeger_url}" in u for u in urls) or dashboard["uid"] == "mes-edge-orders", dashboard[
            "uid"
        ]
        assert any("${kibana_url}" in u for u in urls), dashboard["uid"]


def test_dashboard_metrics_are_created_in_a_metrics_module() -> None:
    """Static guard (the live check is test_metrics_exist): no name that no metrics.py creates."""
    source = "\n".join((REPO / f).read_text() for f in METRIC_SOURCES)
    allowed = recorded_names() | {"up"}
    for query in dashboard_queries():
        for name in metric_names(query.expr) - allowed:
            family = family_name(name)
            # prometheus_client appends `_total` to a Counter created as "gateway_load_shed"
            declared = {f'"{family}"', f'"{name}"', f'"{family.removesuffix("_total")}"'}
            assert any(d in source for d in declared), f"{query.source}: {name}"


def test_elasticsearch_panel_queries_use_mapped_fields() -> None:
    fields = mapped_fields()
    for dashboard in load_dashboards().values():
        for panel in iter_panels(dashboard):
            for target in panel["targets"]:
                if target["datasource"]["type"] == "elasticsearch":
                    for field in re.findall(r"([\w.@]+):", target["query"]):
                        assert field in fields, f"{panel['title']}: {field} is not mapped"
