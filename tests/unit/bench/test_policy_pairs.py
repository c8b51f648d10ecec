"""bench.policies --pair: interleaved order, per-pair ratios with their spread, and no verdict from noise."""

from __future__ import annotations

from bench.policy_pairs import Run, Spread, interleaved, report, resolves


def _run(rps: float, cpu_us: float) -> Run:
    return Run(rps=rps, requests=int(rps * 3), gateway_cpu_s=cpu_us * rps * 3 / 1e6, errors=0, load=4.0,
               busy=0.9)


def test_pairs_alternate_which_route_runs_first() -> None:
    order: list[str] = []

    def run(name: str) -> Run:
        order.append(name)
        return _run(1000, 200)

    interleaved(("partner", "unchecked"), 3, run, echo=lambda _: None)
    assert order == ["partner", "unchecked", "unchecked", "partner", "partner", "unchecked"]


def test_spread_is_median_quartiles_and_range() -> None:
    spread = Spread.of([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (spread.median, spread.q1, spread.q3, spread.low, spread.high) == (3.0, 2.0, 4.0, 1.0, 5.0)
    assert Spread.of([0.5]).median == 0.5


def test_the_cost_comes_from_per_pair_ratios_of_cpu_per_request() -> None:
    pairs = [(_run(900, 210), _run(1000, 200)), (_run(1100, 205), _run(1000, 200)),
             (_run(950, 220), _run(1000, 200))]
    text = "\n".join(report(("partner", "unchecked"), pairs))
    assert "gateway CPU per request unchecked/partner per pair: 0.952" in text
    assert "OpenAPI validation (load-insensitive) = 0.95x" in text


def test_a_throughput_ratio_whose_pairs_disagree_gives_no_verdict() -> None:
    assert resolves(Spread.of([0.97, 0.99, 1.0, 1.02]))
    assert not resolves(Spread.of([0.44, 0.92, 1.22, 1.8]))
    pairs = [(_run(rps, 200), _run(1000, 200)) for rps in (440, 920, 1220, 1800)]
    text = "\n".join(report(("partner", "unchecked"), pairs))
    assert "saturation req/s: OpenAPI validation: SKIPPED (IQR" in text


def test_at_a_steady_rate_the_cost_is_cpu_only() -> None:
    pairs = [(_run(1000, 404), _run(1000, 400)), (_run(1000, 410), _run(1000, 400))]
    text = "\n".join(report(("partner", "unchecked"), pairs, paced=True))
    assert "gateway CPU partner minus unchecked per pair: +7.0" in text
    assert "SKIPPED (both ran at one steady rate (--rate): no saturation figure)" in text
