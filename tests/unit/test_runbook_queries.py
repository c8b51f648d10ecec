"""Every query a runbook tells the on-call to paste asks for something the code exports or logs.

PromQL (```promql blocks of docs/runbooks/*.md): each parses; each metric is declared by a
component's ``metrics.py`` or recorded by a rule; each label a selector matches or a ``by (…)``
groups by is one of that metric's labels (or a target label). KQL (the other fenced blocks and
inline code): each field is one the production code writes (found as a quoted key in its
source). A runbook query on a field that does not exist returns nothing, which reads as "no
problem here" during an incident — GatewayUpstreamEndpointEjected asked for
``gateway.upstream.address``, which nothing logs.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client import REGISTRY

from tests.stack.stack_support import REPO, promql_nodes, recorded_names

RUNBOOKS = sorted((REPO / "docs" / "runbooks").glob("*.md"))
METRICS_MODULES = ("gateway.metrics", "sidecar.metrics", "sidecar.relay.metrics", "legacy_adapters.metrics",
                   "mesdb.metrics", "legacy_sim.metrics")
PRODUCTION = ("gateway", "sidecar", "legacy_adapters", "mesdb", "legacy_sim", "telemetry", "resilience",
              "sharedstate", "contracts")
BUILTIN_METRICS = {"up", "ALERTS", "ALERTS_FOR_STATE"}
TARGET_LABELS = {"instance", "job", "service", "__name__"}  # prometheus/prometheus.yml adds `service`
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)```", re.S)
OTHER_BLOCK = re.compile(r"```(?!promql)[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
KQL_FIELD = re.compile(r"(?<![\w.$])([a-z_]+(?:\.[a-z_]+)*):(?=[\"(*])")


def _exported_labels() -> dict[str, set[str] | None]:
    """Metric family (and sample) name → its label names; None where a custom collector hides them."""
    for module in METRICS_MODULES:
        importlib.import_module(module)
    # prometheus_client has no public accessor for a family's label names
    collectors: dict[str, Any] = REGISTRY._names_to_collectors
    return {name: (set(c._labelnames) if hasattr(c, "_labelnames") else None)
            for name, c in collectors.items()}


def _expressions(block: str) -> list[str]:
    """One expression per line; an indented line continues the one above (a long binary expression)."""
    out: list[str] = []
    for line in block.splitlines():
        if line[:1].isspace() and line.strip() and out:
            out[-1] += "\n" + line
        elif line.strip() and not line.startswith("#"):  # a comment line between queries
            out.append(line)
    return out


def _selectors(node: Any) -> list[Any]:
    return [n for n in promql_nodes(node) if isinstance(n, promql_parser.VectorSelector)]


def _groupings(node: Any) -> list[tuple[list[str], Any]]:
    """(``by`` labels, the aggregated expression) of every ``… by (…) (…)`` in the tree."""
    return [(list(n.modifier.labels), n.expr) for n in promql_nodes(node)
            if isinstance(n, promql_parser.AggregateExpr) and n.modifier is not None
            and str(n.modifier).startswith("by")]


def _promql_problems(text: str, exported: dict[str, set[str] | None], recorded: set[str]) -> list[str]:
    problems = []
    for block in PROMQL_BLOCK.findall(text):
        for expr in _expressions(block):
            try:
                tree = promql_parser.parse(expr)
            except (ValueError, RuntimeError) as exc:
                problems.append(f"does not parse: {expr.strip()!r} ({exc})")
                continue

            def labels_of(name: str) -> set[str] | None:
                known = exported.get(name)
                if name.endswith("_bucket") and exported.get(name.removesuffix("_bucket")) is not None:
                    known = {*(exported[name.removesuffix("_bucket")] or set()), "le"}
                return known

            def known_name(name: str) -> bool:
                return name in exported or name in recorded or name in BUILTIN_METRICS

            for sel in _selectors(tree):
                if not known_name(sel.name):
                    problems.append(f"metric {sel.name} is not exported: {expr.strip()!r}")
                    continue
                known = labels_of(sel.name)
                if known is None or sel.name in recorded or sel.name in BUILTIN_METRICS:
                    continue
                for m in sel.matchers.matchers:
                    if m.name not in known | TARGET_LABELS:
                        problems.append(f"{sel.name} has no label {m.name}: {expr.strip()!r}")
            for by, inner in _groupings(tree):
                sets = [labels_of(s.name) for s in _selectors(inner) if s.name not in recorded]
                if any(s is None for s in sets) or not sets:
                    continue
                available = set().union(*(s for s in sets if s is not None)) | TARGET_LABELS
                problems += [f"by ({label}): no selected metric has it: {expr.strip()!r}"
                             for label in by if label not in available]
    return problems


def _source_text() -> str:
    return "\n".join(p.read_text() for pkg in PRODUCTION for p in (REPO / pkg).rglob("*.py"))


def _kql_fields(text: str) -> set[str]:
    without_promql = PROMQL_BLOCK.sub("", text)
    snippets = OTHER_BLOCK.findall(without_promql) + INLINE.findall(OTHER_BLOCK.sub("", without_promql))
    return {field for snippet in snippets for field in KQL_FIELD.findall(snippet)}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str] | None]:
    return _exported_labels()


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.stem)
def test_every_runbook_promql_selects_exported_metrics_and_labels(
        runbook: Path, exported: dict[str, set[str] | None]) -> None:
    assert _promql_problems(runbook.read_text(), exported, recorded_names()) == []


def test_every_runbook_kql_field_is_written_by_the_code() -> None:
    source = _source_text()
    missing = {f"{runbook.stem}: {field}" for runbook in RUNBOOKS
               for field in _kql_fields(runbook.read_text()) if f'"{field}"' not in source}
    assert not missing, sorted(missing)


def test_the_checks_catch_a_wrong_label_a_wrong_metric_and_a_wrong_field(
        exported: dict[str, set[str] | None]) -> None:
    bad = ("```promql\ngateway_upstream_requests_total{address=\"x\"}\nsum by (pod) "
           "(rate(gateway_upstream_ejections_total[5m]))\nno_such_metric_total\n```\n"
           "```\nevent.dataset:\"gateway.access\" and gateway.upstream.address:*\n```\n")
    problems = _promql_problems(bad, exported, set())
    assert len(problems) == 3, problems
    assert _kql_fields(bad) == {"event.dataset", "gateway.upstream.address"}
