"""IETF RateLimit / RateLimit-Policy structured fields (draft-ietf-httpapi-ratelimit-headers-11)."""

from __future__ import annotations

import limits

from gateway.ratelimit import Decision, Window, policy_field, ratelimit_field, retry_after

WINDOWS = (Window("burst", limits.parse("50/second")), Window("rate", limits.parse("1000/minute")),
           Window("quota", limits.parse("100000/day")))


def test_policy_field_lists_every_window_with_quota_and_window_seconds() -> None:
    assert policy_field(WINDOWS) == '"burst";q=50;w=1, "rate";q=1000;w=60, "quota";q=100000;w=86400'


def test_ratelimit_field_rounds_effective_window_up_and_never_goes_negative() -> None:
    assert ratelimit_field(WINDOWS, (49, 0, -3), (0.2, 59.01, 0.0)) == \
        '"burst";r=49;t=1, "rate";r=0;t=60, "quota";r=0;t=0'


def test_retry_after_covers_the_longest_violated_window_and_is_at_least_one_second() -> None:
    assert retry_after([0.02]) == 1
    assert retry_after([0.5, 12.1]) == 13
    assert retry_after([]) == 1


def test_violated_names_the_windows_without_remaining_quota() -> None:
    decision = Decision(False, WINDOWS, (10, 0, 5), (1.0, 30.0, 100.0))
    assert decision.violated == ("rate",)
