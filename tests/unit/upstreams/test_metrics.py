"""gateway.metrics: multiprocess-safe gauges, documented names, bounded status classes."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from gateway import metrics

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics-gateway.md"


def _all_metrics() -> list[Counter | Gauge | Histogram]:
    return [
        value
        for value in vars(metrics).values()
        if isinstance(value, (Counter, Gauge, Histogram))
    ]


def test_every_gauge_names_a_multiprocess_mode() -> None:
    gauges = [m for m in _all_metrics() if isinstance(m, Gauge)]
    assert gauges
    assert all(g._multiprocess_mode != "all" for g in gauges), [g.describe()[0].name for g in gauges]


def test_every_metric_is_documented() -> None:
    text = DOC.read_text()
    names = [m.describe()[0].name + ("_total" if isinstance(m, Counter) else "") for m in _all_metrics()]
    assert [name for name in names if f"`{name}`" not in text] == []


def test_status_class_is_bounded() -> None:
    assert [metrics.status_class(s) for s in (101, 200, 304, 404, 503, 999)] == [
        "1xx", "2xx", "3xx", "4xx", "5xx", "other",
    ]
