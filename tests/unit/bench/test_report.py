"""The proxy benchmark's summaries: CPU per request served, medians over rounds, ratios."""

from __future__ import annotations

from bench import report
from bench.wrk import WrkResult, wrk_command


def _run(
    variant: str, *, round_no: int, requests: int, cpu_s: float, shape: str = "saturation"
) -> report.Run:
    result = WrkResult(
        requests_per_s=requests / 8,
        requests=requests,
        seconds=8.0,
        latency_ms={"50": 1.0, "99": 3.0},
        socket_errors=0,
        non_2xx=0,
    )
    return report.Run(
        round=round_no,
        shape=shape,
        variant=variant,
        result=result,
        server_cores=cpu_s / 8,
        server_cpu_s=cpu_s,
        box_cores=2.0,
        other_cores=0.0,
    )


def test_cpu_per_request_is_server_cpu_seconds_over_requests_served() -> None:
    run = _run("gateway-1p", round_no=1, requests=40_000, cpu_s=7.2)

    assert run.cpu_per_request_s == 7.2 / 40_000
    assert run.as_json()["cpu_per_request_s"] == 7.2 / 40_000
    assert report.cpu_per_request(1.0, 0) is None


def test_summary_takes_the_median_cpu_per_request_over_rounds() -> None:
    runs = [
        _run("gateway-1p", round_no=1, requests=10_000, cpu_s=1.0),
        _run("gateway-1p", round_no=2, requests=10_000, cpu_s=3.0),
        _run("gateway-1p", round_no=3, requests=10_000, cpu_s=2.0),
    ]

    summary = report.summarize(runs)["saturation"]["gateway-1p"]

    assert summary.cpu_per_request_s == 2.0 / 10_000


def test_cpu_lines_name_each_gateway_and_shape_in_microseconds_and_seconds() -> None:
    runs = [
        _run("gateway-1p", round_no=1, requests=10_000, cpu_s=1.8),
        _run("gateway-1p", round_no=1, requests=10_000, cpu_s=2.5, shape="steady"),
        _run("bare-aiohttp", round_no=1, requests=10_000, cpu_s=1.0),
    ]

    lines = report.cpu_lines(report.summarize(runs), ("gateway-1p", "gateway-2p"))

    assert lines == [
        "CPU per request gateway-1p saturation: 180.0 µs (1.800e-04 CPU s / request served, median of 1)",
        "CPU per request gateway-1p steady: 250.0 µs (2.500e-04 CPU s / request served, median of 1)",
    ]


def test_ratios_always_include_the_gateway_over_bare_http1() -> None:
    runs = [
        _run("gateway-1p", round_no=1, requests=40_000, cpu_s=1.0),
        _run("bare-http1", round_no=1, requests=80_000, cpu_s=1.0),
    ]

    ratios = report.ratios(report.summarize(runs))

    assert ratios["gateway-1p / bare-http1"] == 0.5
    assert ratios["gateway-1p / bare-aiohttp"] is None


def test_wrk_passes_script_arguments_after_the_url() -> None:
    argv = wrk_command("http://h/orders", threads=2, connections=8, duration_s=8, script_args=("1400.000",))

    assert argv[-3:] == ["http://h/orders", "--", "1400.000"]
    assert "--" not in wrk_command("http://h/orders", threads=2, connections=8, duration_s=8)
