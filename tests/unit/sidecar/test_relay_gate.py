"""The relay's pause gate: consecutive failures open it, one probe closes or reopens it."""

from __future__ import annotations

import pytest

from sidecar.relay.gate import GateState, PauseGate


def gate(**overrides: float) -> PauseGate:
    settings = {"failure_threshold": 3, "backoff_initial": 0.01, "backoff_max": 0.04, **overrides}
    return PauseGate(**settings)  # type: ignore[arg-type]


def test_opens_only_after_threshold_consecutive_failures() -> None:
    g = gate()
    assert not g.on_failure()
    assert not g.on_failure()
    g.on_success()  # resets the streak
    assert not g.on_failure()
    assert not g.on_failure()
    assert g.on_failure()
    assert g.state is GateState.OPEN
    assert g.paused


def test_results_of_deliveries_in_flight_before_the_pause_do_not_move_it() -> None:
    g = gate(failure_threshold=1)
    g.on_failure()
    g.on_success()
    assert not g.on_failure()
    assert g.state is GateState.OPEN


async def test_a_good_probe_closes_and_resets_the_backoff() -> None:
    g = gate(failure_threshold=1)
    g.on_failure()
    await g.wait_for_probe()
    assert g.state is GateState.HALF_OPEN
    assert g.paused
    g.probe_result(False)
    assert (g.state, g.backoff) == (GateState.OPEN, 0.02)
    await g.wait_for_probe()
    g.probe_result(True)
    assert (g.state, g.backoff, g.paused) == (GateState.CLOSED, 0.01, False)


def test_backoff_doubles_up_to_the_maximum() -> None:
    g = gate(failure_threshold=1)
    g.on_failure()
    backoffs = []
    for _ in range(4):
        g.begin_probe()
        g.probe_result(False)
        backoffs.append(g.backoff)
    assert backoffs == [0.02, 0.04, 0.04, 0.04]


def test_retry_after_lengthens_the_pause_but_is_capped() -> None:
    g = gate(failure_threshold=1, backoff_max=5.0)
    g.on_failure(retry_after=2.0)
    assert g.seconds_until_probe() == pytest.approx(2.0, abs=0.1)
    g.begin_probe()
    g.probe_result(False, retry_after=3600)
    assert g.seconds_until_probe() == pytest.approx(5.0, abs=0.1)


def test_closed_gate_never_waits() -> None:
    assert gate().seconds_until_probe() == 0.0
