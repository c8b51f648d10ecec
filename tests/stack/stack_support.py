"""What the bundled stack's config refers to: PromQL of rules and dashboards, and its metric names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "prometheus"
RULES = PROMETHEUS / "rules"
DASHBOARDS = REPO / "grafana" / "dashboards"
INSTALL_HINT = (
    "promtool/amtool missing: apt-get install -y prometheus prometheus-alertmanager "
    "(scripts/install-deps.sh does it as root; `make test` runs it)"
)

#: Grafana's built-in interval variables → a duration PromQL accepts.
_GRAFANA_DURATIONS = re.compile(r"\$\{?__(rate_interval|interval|range)(?::[a-z]+)?\}?")
#: Any other dashboard variable (`$cluster`, `${route}`, `${route:regex}`, `[[listener]]`) → a regex
#: that matches everything; dashboards use them only inside `=~"..."` matchers.
_GRAFANA_VARIABLES = re.compile(
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_]\w*\]\]"
)
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)
#: Suffixes prometheus_client adds to a histogram/summary/counter family name.
_SAMPLE_SUFFIXES = ("_bucket", "_count", "_sum", "_created")


@dataclass(frozen=True)
class Query:
    """One PromQL expression found in the stack's config, and where."""

    source: str  # "rules/gateway.yml: GatewayRouteLatencyHigh", "dashboard mes-edge-gateway: Requests"
    expr: str  # as PromQL, Grafana variables substituted


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus would receive it (variables substituted, label_values unwrapped)."""
    expr = _GRAFANA_DURATIONS.sub("5m", expr)
    expr = _GRAFANA_VARIABLES.sub(".*", expr)
    match = _LABEL_VALUES.match(expr)
    return match.group("selector") if match else expr


def load_rule_groups() -> dict[Path, list[dict[str, Any]]]:
    """Every rule file's groups."""
    return {path: yaml.safe_load(path.read_text())["groups"] for path in sorted(RULES.glob("*.yml"))}


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule (one alert name may have several rules)."""
    return [
        rule
        for groups in load_rule_groups().values()
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    ]


def recorded_names() -> set[str]:
    """Series names the recording rules create (they exist in Prometheus, not in /metrics)."""
    return {
        rule["record"]
        for groups in load_rule_groups().values()
        for group in groups
        for rule in group["rules"]
        if "record" in rule
    }


def rule_queries() -> list[Query]:
    queries = []
    for path, groups in load_rule_groups().items():
        for group in groups:
            for rule in group["rules"]:
                queries.append(
                    Query(f"rules/{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"])
                )
    return queries


def load_dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included; row headers themselves are skipped."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_queries() -> list[Query]:
    """Every PromQL query of every dashboard: panel targets and template variables."""
    queries = []
    for dashboard in load_dashboards().values():
        uid = dashboard["uid"]
        for panel in iter_panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus":
                    queries.append(
                        Query(f"dashboard {uid}: {panel['title']}", grafana_to_promql(target["expr"]))
                    )
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                queries.append(
                    Query(f"dashboard {uid}: variable {variable['name']}", grafana_to_promql(text))
                )
    return queries


def promql_nodes(node: Any) -> Iterator[Any]:
    """Every node of a parsed PromQL expression (``promql_parser.parse``), ``node`` first."""
    stack: list[Any] = [node]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, promql_parser.MatrixSelector):
            stack.append(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            stack += [node.lhs, node.rhs]
        elif isinstance(node, promql_parser.AggregateExpr):
            stack.append(node.expr)
            if node.param is not None:
                stack.append(node.param)
        elif isinstance(node, promql_parser.Call):
            stack += list(node.args)
        elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
            stack.append(node.expr)


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (parsed, not guessed with a regex)."""
    names: set[str] = set()
    for node in promql_nodes(promql_parser.parse(expr)):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
    return names


def family_name(sample_name: str) -> str:
    """``gateway_request_duration_seconds_bucket`` → ``gateway_request_duration_seconds``."""
    for suffix in _SAMPLE_SUFFIXES:
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def referenced_metrics() -> dict[str, set[str]]:
    """Scraped metric name → where it is used, over every rule and dashboard query.

    Names made by recording rules are left out: they are checked to be *defined* instead.
    """
    recorded = recorded_names()
    used: dict[str, set[str]] = {}
    for query in [*rule_queries(), *dashboard_queries()]:
        for name in metric_names(query.expr) - recorded:
            used.setdefault(name, set()).add(query.source)
    return used
