"""Medians and ratios of a proxy benchmark run, as text tables and as JSON (targets: bench/targets.py)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from bench.wrk import WrkResult

DIRECT = "direct"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """One measured wrk run of one variant under one load shape."""

    round: int
    shape: str
    variant: str
    result: WrkResult
    server_cores: float  # CPU used by the server under test (all its processes)
    server_cpu_s: float  # CPU seconds of the server under test over the measured run
    box_cores: float  # CPU used by the whole machine (wrk and the endpoints included)
    other_cores: float  # CPU used by processes the benchmark did not start (noise)

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "shape": self.shape,
            "variant": self.variant,
            **dataclasses.asdict(self.result),
            "server_cores": round(self.server_cores, 3),
            "server_cpu_s": round(self.server_cpu_s, 4),
            "cpu_per_request_s": self.cpu_per_request_s,
            "box_cores": round(self.box_cores, 3),
            "other_cores": round(self.other_cores, 3),
        }

    @property
    def cpu_per_request_s(self) -> float | None:
        """Server CPU seconds per request served (None when wrk saw no request)."""
        return cpu_per_request(self.server_cpu_s, self.result.requests)


def cpu_per_request(cpu_seconds: float, requests: int) -> float | None:
    """CPU seconds per request served, or None without requests."""
    return cpu_seconds / requests if requests > 0 else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    """Medians over rounds of one variant under one shape."""

    rounds: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    server_cores: float
    cpu_per_request_s: float | None  # median over rounds of server CPU seconds / requests served
    box_cores: float
    other_cores: float
    errors: int
    added_p50_ms: float | None  # median over rounds of (variant - direct of the same round)
    added_p99_ms: float | None


def summarize(runs: Sequence[Run]) -> dict[str, dict[str, Summary]]:
    """shape -> variant -> Summary, in the order the runs first appear."""
    direct_p = {(r.shape, r.round): r.result for r in runs if r.variant == DIRECT}
    grouped: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        grouped.setdefault(run.shape, {}).setdefault(run.variant, []).append(run)
    summaries: dict[str, dict[str, Summary]] = {}
    for shape, by_variant in grouped.items():
        summaries[shape] = {}
        for variant, variant_runs in by_variant.items():
            paired = [
                (r.result, direct_p[(shape, r.round)])
                for r in variant_runs
                if variant != DIRECT and (shape, r.round) in direct_p
            ]
            summaries[shape][variant] = Summary(
                rounds=len(variant_runs),
                requests_per_s=_median(r.result.requests_per_s for r in variant_runs),
                p50_ms=_median(r.result.p50_ms for r in variant_runs),
                p99_ms=_median(r.result.p99_ms for r in variant_runs),
                server_cores=_median(r.server_cores for r in variant_runs),
                cpu_per_request_s=_median_or_none(r.cpu_per_request_s for r in variant_runs),
                box_cores=_median(r.box_cores for r in variant_runs),
                other_cores=_median(r.other_cores for r in variant_runs),
                errors=sum(r.result.errors for r in variant_runs),
                added_p50_ms=_median(v.p50_ms - d.p50_ms for v, d in paired) if paired else None,
                added_p99_ms=_median(v.p99_ms - d.p99_ms for v, d in paired) if paired else None,
            )
    return summaries


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def _median_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratios(summaries: dict[str, dict[str, Summary]]) -> dict[str, float | None]:
    """Saturation req/s ratios between variants (None when either side was not measured)."""
    saturation = summaries.get("saturation", {})

    def ratio(numerator: str, denominator: str) -> float | None:
        if numerator not in saturation or denominator not in saturation:
            return None
        return saturation[numerator].requests_per_s / saturation[denominator].requests_per_s

    return {
        "gateway-1p / bare-aiohttp": ratio("gateway-1p", "bare-aiohttp"),
        "gateway-1p / bare-http1": ratio("gateway-1p", "bare-http1"),
        "gateway-1p / nginx-proxy": ratio("gateway-1p", "nginx-proxy"),
        "gateway-2p / gateway-1p": ratio("gateway-2p", "gateway-1p"),
        "bare-aiohttp-2p / bare-aiohttp": ratio("bare-aiohttp-2p", "bare-aiohttp"),
        "bare-http1 / bare-aiohttp": ratio("bare-http1", "bare-aiohttp"),
        "nginx-proxy / direct": ratio("nginx-proxy", DIRECT),
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _ms(value: float | None, *, added: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if added else f"{value:.2f}"


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f}"


def cpu_lines(summaries: dict[str, dict[str, Summary]], variants: Sequence[str]) -> list[str]:
    """One line per variant and shape: CPU seconds of its processes / requests served (medians)."""
    lines = []
    for variant in variants:
        for shape, by_variant in summaries.items():
            summary = by_variant.get(variant)
            if summary is None or summary.cpu_per_request_s is None:
                continue
            lines.append(
                f"CPU per request {variant} {shape}: {summary.cpu_per_request_s * 1e6:.1f} µs"
                f" ({summary.cpu_per_request_s:.3e} CPU s / request served, median of {summary.rounds})"
            )
    return lines


def saturation_table(by_variant: dict[str, Summary]) -> str:
    rows = [
        [
            variant,
            f"{s.requests_per_s:,.0f}",
            _ms(s.p50_ms),
            _ms(s.p99_ms),
            f"{s.server_cores:.2f}",
            _us(s.cpu_per_request_s),
            f"{s.requests_per_s / s.server_cores:,.0f}" if s.server_cores > 0.05 else "-",
            f"{s.box_cores:.2f}",
            f"{s.other_cores:.2f}",
            str(s.errors),
        ]
        for variant, s in by_variant.items()
    ]
    headers = [
        "variant",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server cores",
        "CPU µs/req",
        "req/s/core",
        "box cores",
        "other",
        "errors",
    ]
    return _table(headers, rows)


def steady_table(by_variant: dict[str, Summary]) -> str:
    rows = [
        [
            variant,
            f"{s.requests_per_s:,.0f}",
            _ms(s.p50_ms),
            _ms(s.p99_ms),
            _ms(s.added_p50_ms, added=True),
            _ms(s.added_p99_ms, added=True),
            f"{s.server_cores:.2f}",
            _us(s.cpu_per_request_s),
            f"{s.other_cores:.2f}",
            str(s.errors),
        ]
        for variant, s in by_variant.items()
    ]
    headers = [
        "variant",
        "req/s",
        "p50 ms",
        "p99 ms",
        "added p50",
        "added p99",
        "server cores",
        "CPU µs/req",
        "other",
        "errors",
    ]
    return _table(headers, rows)
