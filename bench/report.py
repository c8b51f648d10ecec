"""Medians, ratios and verdicts of a proxy benchmark run, as text tables and as JSON."""

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
    box_cores: float  # CPU used by the whole machine (wrk and the endpoints included)
    other_cores: float  # CPU used by processes the benchmark did not start (noise)

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "shape": self.shape,
            "variant": self.variant,
            **dataclasses.asdict(self.result),
            "server_cores": round(self.server_cores, 3),
            "box_cores": round(self.box_cores, 3),
            "other_cores": round(self.other_cores, 3),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    """Medians over rounds of one variant under one shape."""

    rounds: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    server_cores: float
    box_cores: float
    other_cores: float
    errors: int
    added_p50_ms: float | None  # median over rounds of (variant - direct of the same round)
    added_p99_ms: float | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """A target a variant (or a ratio of two) is held to."""

    label: str
    value: float | None
    limit: float
    at_least: bool  # True: value >= limit passes; False: value <= limit passes
    unit: str = ""
    missing: str = ""

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "SKIPPED"
        passed = self.value >= self.limit if self.at_least else self.value <= self.limit
        return "PASS" if passed else "FAIL"

    def line(self) -> str:
        if self.value is None:
            return f"VERDICT {self.label}: SKIPPED ({self.missing})"
        sign = "+" if self.unit == "ms" and self.value >= 0 else ""
        relation = ">=" if self.at_least else "<="
        return (
            f"VERDICT {self.label} = {sign}{self.value:.2f}{self.unit} "
            f"(target {relation} {self.limit:g}{self.unit}): {self.verdict}"
        )


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
                box_cores=_median(r.box_cores for r in variant_runs),
                other_cores=_median(r.other_cores for r in variant_runs),
                errors=sum(r.result.errors for r in variant_runs),
                added_p50_ms=_median(v.p50_ms - d.p50_ms for v, d in paired) if paired else None,
                added_p99_ms=_median(v.p99_ms - d.p99_ms for v, d in paired) if paired else None,
            )
    return summaries


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ratios(summaries: dict[str, dict[str, Summary]]) -> dict[str, float | None]:
    """Saturation req/s ratios between variants (None when either side was not measured)."""
    saturation = summaries.get("saturation", {})

    def ratio(numerator: str, denominator: str) -> float | None:
        if numerator not in saturation or denominator not in saturation:
            return None
        return saturation[numerator].requests_per_s / saturation[denominator].requests_per_s

    optional = {"bare-http1 / bare-aiohttp": ratio("bare-http1", "bare-aiohttp")}
    return {
        "gateway-1p / bare-aiohttp": ratio("gateway-1p", "bare-aiohttp"),
        "gateway-1p / nginx-proxy": ratio("gateway-1p", "nginx-proxy"),
        "gateway-2p / gateway-1p": ratio("gateway-2p", "gateway-1p"),
        "bare-aiohttp-2p / bare-aiohttp": ratio("bare-aiohttp-2p", "bare-aiohttp"),
        "nginx-proxy / direct": ratio("nginx-proxy", DIRECT),
        **{label: value for label, value in optional.items() if value is not None},
    }


def targets(
    summaries: dict[str, dict[str, Summary]],
    ratio_values: dict[str, float | None],
    not_measured: dict[str, str],
) -> list[Target]:
    """The gateway's targets: throughput against the bare proxy and itself, added latency."""

    def why(shape: str, *variants: str) -> str:
        measured = summaries.get(shape, {})
        missing = [v for v in variants if v not in measured]
        return "; ".join(f"{v}: {not_measured.get(v, f'not measured at {shape}')}" for v in missing)

    found = [
        Target(
            label="gateway-1p / bare-aiohttp (saturation req/s)",
            value=ratio_values["gateway-1p / bare-aiohttp"],
            limit=0.7,
            at_least=True,
            unit="x",
            missing=why("saturation", "gateway-1p", "bare-aiohttp"),
        ),
        Target(
            label="gateway-2p / gateway-1p (saturation req/s)",
            value=ratio_values["gateway-2p / gateway-1p"],
            limit=1.4,
            at_least=True,
            unit="x",
            missing=why("saturation", "gateway-2p", "gateway-1p"),
        ),
    ]
    steady = summaries.get("steady", {})
    for variant in ("gateway-1p", "gateway-2p"):
        summary = steady.get(variant)
        for label, limit in (("p50", 0.5), ("p99", 1.5)):
            value = None if summary is None else getattr(summary, f"added_{label}_ms")
            found.append(
                Target(
                    label=f"{variant} added {label} over direct at steady rate",
                    value=value,
                    limit=limit,
                    at_least=False,
                    unit="ms",
                    missing=why("steady", variant, DIRECT),
                )
            )
    return found


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


def saturation_table(by_variant: dict[str, Summary]) -> str:
    rows = [
        [
            variant,
            f"{s.requests_per_s:,.0f}",
            _ms(s.p50_ms),
            _ms(s.p99_ms),
            f"{s.server_cores:.2f}",
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
        "other",
        "errors",
    ]
    return _table(headers, rows)
