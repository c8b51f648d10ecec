"""The proxy benchmark's targets: the steady rate from the saturation run, and ratio verdicts."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bench import targets
from bench.report import Summary


def _summary(
    *, rps: float = 1000.0, added_p50: float | None = None, added_p99: float | None = None
) -> Summary:
    return Summary(
        rounds=3,
        requests_per_s=rps,
        p50_ms=1.0,
        p99_ms=2.0,
        server_cores=1.0,
        cpu_per_request_s=1e-4,
        box_cores=2.0,
        other_cores=0.0,
        errors=0,
        added_p50_ms=added_p50,
        added_p99_ms=added_p99,
    )


def test_steady_rate_is_half_the_bare_aiohttp_saturation_rate() -> None:
    saturation = {"bare-aiohttp": _summary(rps=5_600.0), "gateway-1p": _summary(rps=9_999.0)}

    assert targets.steady_rate(saturation) == 2_800.0


def test_steady_rate_is_none_without_the_bare_aiohttp_saturation_rate() -> None:
    assert targets.steady_rate({"gateway-1p": _summary(rps=5_000.0)}) is None
    assert targets.steady_rate({"bare-aiohttp": _summary(rps=0.0)}) is None


def test_each_wrk_thread_paces_its_share_of_the_rate() -> None:
    assert targets.per_thread_rate(2_800.0, 2) == "1400.000"
    with pytest.raises(ValueError, match="positive rate"):
        targets.per_thread_rate(0.0, 2)


def test_added_latency_within_the_ratio_passes_and_the_line_names_ratio_values_and_rate() -> None:
    steady = {"gateway-1p": _summary(added_p50=0.48), "bare-aiohttp": _summary(added_p50=0.40)}

    target = targets.added_latency_target(
        steady, variant="gateway-1p", reference="bare-aiohttp", percentile="p50", limit=1.2,
        rate_label="2,800 req/s (0.5 x bare-aiohttp saturation)",
    )

    assert target.value == pytest.approx(1.2)
    assert target.verdict == "PASS"
    assert target.line() == (
        "VERDICT gateway-1p / bare-aiohttp added p50 at 2,800 req/s (0.5 x bare-aiohttp saturation)"
        " = 1.20x (+0.48 / +0.40 ms; target <= 1.2x): PASS"
    )


def test_added_latency_above_the_ratio_fails() -> None:
    steady = {"gateway-1p": _summary(added_p99=1.40), "bare-aiohttp": _summary(added_p99=1.0)}

    target = targets.added_latency_target(
        steady, variant="gateway-1p", reference="bare-aiohttp", percentile="p99", limit=1.3, rate_label="r"
    )

    assert target.verdict == "FAIL"


def test_no_ratio_is_taken_over_a_reference_latency_below_wrks_resolution() -> None:
    steady = {"gateway-1p": _summary(added_p50=0.30), "bare-aiohttp": _summary(added_p50=0.01)}

    target = targets.added_latency_target(
        steady, variant="gateway-1p", reference="bare-aiohttp", percentile="p50", limit=1.2, rate_label="r"
    )

    assert target.verdict == "SKIPPED"
    assert "below wrk's resolution" in target.line()


def test_every_target_is_a_ratio_and_the_latency_ones_name_the_rate() -> None:
    saturation = {
        name: _summary(rps=rps)
        for name, rps in {"bare-aiohttp": 5_000.0, "gateway-1p": 4_000.0, "gateway-2p": 6_000.0}.items()
    }
    steady = {
        "direct": _summary(),
        "bare-aiohttp": _summary(added_p50=0.4, added_p99=1.0),
        "bare-aiohttp-2p": _summary(added_p50=0.4, added_p99=1.0),
        "gateway-1p": _summary(added_p50=0.5, added_p99=1.4),
        "gateway-2p": _summary(added_p50=0.4, added_p99=1.0),
    }
    ratios = {"gateway-1p / bare-aiohttp": 0.8, "gateway-2p / gateway-1p": 1.5}

    found = targets.targets(
        {"saturation": saturation, "steady": steady}, ratios, {}, rate=targets.rate_label(2_500.0)
    )

    assert [(t.label.split(" at ")[0], t.verdict) for t in found] == [
        ("gateway-1p / bare-aiohttp (saturation req/s)", "PASS"),
        ("gateway-2p / gateway-1p (saturation req/s)", "PASS"),
        ("gateway-1p / bare-aiohttp added p50", "FAIL"),
        ("gateway-1p / bare-aiohttp added p99", "FAIL"),
        ("gateway-2p / bare-aiohttp-2p added p50", "PASS"),
        ("gateway-2p / bare-aiohttp-2p added p99", "PASS"),
    ]
    assert all(re.search(r"target (<=|>=) [0-9.]+x\)", t.line()) for t in found)
    assert all("2,500 req/s (0.5 x bare-aiohttp saturation)" in t.label for t in found[2:])


def test_latency_targets_say_why_the_steady_shape_did_not_run() -> None:
    found = targets.targets({}, {}, {}, rate=targets.rate_label(None), steady_skipped="no steady rate: x")

    assert [t.verdict for t in found] == ["SKIPPED"] * 6
    assert all("no steady rate: x" in t.line() for t in found[2:])


def test_an_explicit_steady_rate_is_named_as_such() -> None:
    assert targets.rate_label(1_234.4, explicit=True) == "1,234 req/s (set by --steady-rate)"


def test_the_ceiling_over_bare_http1_is_reported_without_a_verdict() -> None:
    line = targets.ceiling_line({"gateway-1p / bare-http1": 0.54})

    assert line.startswith("CEILING gateway-1p / bare-http1 (saturation req/s) = 0.54x")
    assert "VERDICT" not in line
    assert "not measured" in targets.ceiling_line({})


def test_a_throughput_target_at_its_limit_passes() -> None:
    target = targets.Target(label="t", value=0.7, limit=0.7, at_least=True)

    assert target.verdict == "PASS"
    assert dataclasses.replace(target, value=0.69).verdict == "FAIL"
