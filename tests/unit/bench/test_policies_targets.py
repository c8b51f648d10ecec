"""bench.policies' targets: ratios of the partner route over the plain route of the same run."""

from __future__ import annotations

from bench import policies


def test_policy_targets_are_ratios_of_the_partner_route_over_the_plain_route() -> None:
    throughput, latency = policies.verdicts(0.77, partner_p50=0.86, plain_p50=0.49, steady_rps=2_900.0)

    assert throughput.line() == "VERDICT partner / plain (saturation req/s) = 0.77x (target >= 0.75x): PASS"
    assert latency.line() == (
        "VERDICT partner / plain steady p50 at 2,900 req/s (0.5 x plain saturation) = 1.76x"
        " (0.86 / 0.49 ms; target <= 3x): PASS"
    )


def test_a_partner_p50_over_three_times_the_plain_one_fails() -> None:
    _, latency = policies.verdicts(0.8, partner_p50=1.6, plain_p50=0.5, steady_rps=2_000.0)

    assert latency.verdict == "FAIL"
