"""bench.mesdb's gateway rows: the gateway + sidecar overhead over the paired MES-direct calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.mesdb_gateway import gateway_config, overhead
from gateway.config import parse_config


def _t(name: str, p50: float, p95: float) -> dict[str, Any]:
    return {"name": name, "p50_ms": p50, "p95_ms": p95, "samples": 20}


def test_overhead_pairs_each_gateway_call_with_the_same_mes_direct_call() -> None:
    through = [_t("gateway list status=SUBMITTED", 3.0, 4.5), _t("gateway list (no filter)", 101.0, 110.0)]
    direct = [_t("MES list (no filter)", 100.0, 108.0), _t("MES list status=SUBMITTED", 2.0, 2.5)]

    assert overhead(through, direct) == [("list status=SUBMITTED", 1.0, 2.0), ("list (no filter)", 1.0, 2.0)]


def test_overhead_skips_calls_without_a_direct_counterpart() -> None:
    through = [_t("gateway list status=SHIPPED", 3.0, 4.0)]

    assert overhead(through, [_t("MES list status=SUBMITTED", 1.0, 1.0)]) == []


def test_the_bench_gateway_routes_the_internal_orders_list_to_the_sidecar_without_a_cache(
    tmp_path: Path,
) -> None:
    parsed = parse_config(gateway_config("http://127.0.0.1:1", tmp_path))

    (route,) = parsed.routes
    assert (route.listener, route.prefix, route.cluster) == ("internal", "/orders", "mes")
    assert route.cache is None  # not cached: every request is forwarded
