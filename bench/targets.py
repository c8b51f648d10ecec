"""The proxy benchmark's targets: ratios within one run, and the steady rate they are measured at.

Machines differ 2-3x in speed, so no target is an absolute rate or time. The steady shape runs
at half of the bare aiohttp proxy's saturation rate measured in the same run; at that rate the
gateway's added latency (variant minus direct, paired per round) is held to a multiple of the
bare proxy's added latency.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from bench.report import DIRECT, Summary

#: The steady shape runs at this fraction of RATE_REFERENCE's saturation req/s.
STEADY_FRACTION = 0.5
RATE_REFERENCE = "bare-aiohttp"
#: wrk prints latencies with 2 decimals in ms: a smaller added latency is noise, no ratio is taken.
WRK_RESOLUTION_MS = 0.02
#: (variant, reference, limit): variant's saturation req/s >= limit x the reference's
THROUGHPUT_TARGETS = (("gateway-1p", "bare-aiohttp", 0.7), ("gateway-2p", "gateway-1p", 1.4))
#: (gateway variant, the bare proxy with as many processes) compared at the steady rate
LATENCY_PAIRS = (("gateway-1p", "bare-aiohttp"), ("gateway-2p", "bare-aiohttp-2p"))
#: gateway added latency <= limit x the bare proxy's, per percentile
ADDED_LATENCY_LIMITS = {"p50": 1.2, "p99": 1.3}
#: reported in every run, no target: the gateway against the bare proxy on the gateway's own client
CEILING = "gateway-1p / bare-http1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """A ratio a variant is held to."""

    label: str
    value: float | None
    limit: float
    at_least: bool  # True: value >= limit passes; False: value <= limit passes
    detail: str = ""  # what the ratio is made of, e.g. "+0.45 / +0.40 ms"
    missing: str = ""  # why there is no value

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "SKIPPED"
        passed = self.value >= self.limit if self.at_least else self.value <= self.limit
        return "PASS" if passed else "FAIL"

    def line(self) -> str:
        if self.value is None:
            return f"VERDICT {self.label}: SKIPPED ({self.missing})"
        relation = ">=" if self.at_least else "<="
        detail = f"{self.detail}; " if self.detail else ""
        target = f"target {relation} {self.limit:g}x"
        return f"VERDICT {self.label} = {self.value:.2f}x ({detail}{target}): {self.verdict}"


def steady_rate(
    saturation: Mapping[str, Summary], *, reference: str = RATE_REFERENCE, fraction: float = STEADY_FRACTION
) -> float | None:
    """The steady shape's total req/s: ``fraction`` of ``reference``'s saturation req/s, or None."""
    summary = saturation.get(reference)
    if summary is None or summary.requests_per_s <= 0:
        return None
    return fraction * summary.requests_per_s


def per_thread_rate(rate: float, threads: int) -> str:
    """The steady script's argument: req/s of one wrk thread (each thread paces itself)."""
    if rate <= 0 or threads < 1:
        raise ValueError(f"need a positive rate and at least one thread, got {rate!r}, {threads!r}")
    return f"{rate / threads:.3f}"


def added_latency_target(
    steady: Mapping[str, Summary],
    *,
    variant: str,
    reference: str,
    percentile: str,
    limit: float,
    rate_label: str,
    missing: str = "",
) -> Target:
    """``variant``'s added latency at the steady rate over ``reference``'s, as a ratio."""
    label = f"{variant} / {reference} added {percentile} at {rate_label}"
    measured, base = steady.get(variant), steady.get(reference)
    ours = None if measured is None else getattr(measured, f"added_{percentile}_ms")
    theirs = None if base is None else getattr(base, f"added_{percentile}_ms")
    if ours is None or theirs is None:
        return Target(label=label, value=None, limit=limit, at_least=False, missing=missing or "not measured")
    detail = f"{ours:+.2f} / {theirs:+.2f} ms"
    if theirs < WRK_RESOLUTION_MS:
        why = f"{reference} added {percentile} is below wrk's resolution, no ratio ({detail})"
        return Target(label=label, value=None, limit=limit, at_least=False, missing=why)
    return Target(label=label, value=ours / theirs, limit=limit, at_least=False, detail=detail)


def rate_label(rate: float | None, *, explicit: bool = False) -> str:
    """How a verdict line names the steady rate it was measured at."""
    if rate is None:
        return "the steady rate"
    how = "set by --steady-rate" if explicit else f"{STEADY_FRACTION:g} x {RATE_REFERENCE} saturation"
    return f"{rate:,.0f} req/s ({how})"


def targets(
    summaries: Mapping[str, Mapping[str, Summary]],
    ratio_values: Mapping[str, float | None],
    not_measured: Mapping[str, str],
    *,
    rate: str,
    steady_skipped: str = "",
) -> list[Target]:
    """Every target of a run: saturation throughput ratios, then added-latency ratios at ``rate``.

    ``steady_skipped`` says why the steady shape did not run at all (no rate to run it at).
    """

    def why(shape: str, *variants: str) -> str:
        measured = summaries.get(shape, {})
        missing = [v for v in variants if v not in measured]
        return "; ".join(f"{v}: {not_measured.get(v, f'not measured at {shape}')}" for v in missing)

    found = [
        Target(
            label=f"{variant} / {reference} (saturation req/s)",
            value=ratio_values.get(f"{variant} / {reference}"),
            limit=limit,
            at_least=True,
            missing=why("saturation", variant, reference),
        )
        for variant, reference, limit in THROUGHPUT_TARGETS
    ]
    steady = summaries.get("steady", {})
    for variant, reference in LATENCY_PAIRS:
        for percentile, limit in ADDED_LATENCY_LIMITS.items():
            found.append(
                added_latency_target(
                    steady,
                    variant=variant,
                    reference=reference,
                    percentile=percentile,
                    limit=limit,
                    rate_label=rate,
                    missing=steady_skipped or why("steady", variant, reference, DIRECT),
                )
            )
    return found


def ceiling_line(ratio_values: Mapping[str, float | None]) -> str:
    """gateway-1p / bare-http1: the honest ceiling of this design, reported in every run, no target."""
    value = ratio_values.get(CEILING)
    shown = "not measured" if value is None else f"{value:.2f}x"
    return (
        f"CEILING {CEILING} (saturation req/s) = {shown}"
        " (no target: the bare proxy on the gateway's own upstream client)"
    )
