"""Counters the alert and recording rules read with ``rate``/``increase``/``irate``/``resets``.

``increase(c[15m])`` is 0 after the first event if ``c`` had no sample before it: Prometheus
needs two samples of a series to see it grow. So every such counter must be exported (at 0)
before its first event, with the label sets its selectors ask for wherever those are known up
front (fixed reason/outcome sets, configured clusters and listeners).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import promql_parser

from tests.stack.stack_support import load_rule_groups, recorded_names

_RANGE_FUNCTIONS = {"rate", "increase", "irate", "resets"}


@dataclass(frozen=True)
class CounterRead:
    """One selector of a counter inside a range function of a rule."""

    rule: str  # "orders.yml: CrmQueueDeadLetters"
    name: str  # metric name as selected (histograms: the _bucket/_count series)
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value), op one of = != =~ !~


def _matchers(selector: Any) -> tuple[tuple[str, str, str], ...]:
    out = []
    for m in selector.matchers.matchers:
        op = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~",
              "MatchOp.NotRe": "!~"}[str(m.op)]
        out.append((m.name, op, m.value))
    return tuple(sorted(out))


def counter_reads(expr: str, rule: str) -> list[CounterRead]:
    """Every selector that sits (directly or via a matrix) inside a range function of ``expr``."""
    found: list[CounterRead] = []
    recorded = recorded_names()
    stack: list[tuple[Any, bool]] = [(promql_parser.parse(expr), False)]
    while stack:
        node, inside = stack.pop()
        if isinstance(node, promql_parser.Call):
            ranged = inside or node.func.name in _RANGE_FUNCTIONS
            stack += [(arg, ranged) for arg in node.args]
        elif isinstance(node, promql_parser.MatrixSelector):
            stack.append((node.vector_selector, inside))
        elif isinstance(node, promql_parser.VectorSelector):
            if inside and node.name and node.name not in recorded:
                found.append(CounterRead(rule, node.name, _matchers(node)))
        elif isinstance(node, promql_parser.BinaryExpr):
            stack += [(node.lhs, inside), (node.rhs, inside)]
        elif isinstance(node, promql_parser.AggregateExpr):
            stack.append((node.expr, inside))
            if node.param is not None:
                stack.append((node.param, inside))
        elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
            stack.append((node.expr, inside))
    return found


def rule_counter_reads() -> list[CounterRead]:
    """Counter reads of every alerting and recording rule of prometheus/rules/."""
    reads = []
    for path, groups in load_rule_groups().items():
        for group in groups:
            for rule in group["rules"]:
                name = f"{path.name}: {rule.get('alert') or rule.get('record')}"
                reads += counter_reads(rule["expr"], name)
    return reads
