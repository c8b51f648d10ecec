"""The transition table of the order lifecycle."""

from __future__ import annotations

import itertools

import pytest

from contracts.lifecycle import (
    ACTIVE_STATUSES,
    FORWARD_PATH,
    TERMINAL_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    OrderStatus,
    check_transition,
    is_allowed,
    parse_status,
)

S = OrderStatus


def test_each_status_moves_forward_one_step_only() -> None:
    for current, following in itertools.pairwise(FORWARD_PATH):
        assert is_allowed(current, following)
        later = FORWARD_PATH[FORWARD_PATH.index(following) + 1:]
        assert all(not is_allowed(current, status) for status in later)


def test_cancel_is_allowed_exactly_before_shipped() -> None:
    cancellable = {s for s in S if is_allowed(s, S.CANCELLED)}
    assert cancellable == set(FORWARD_PATH[:FORWARD_PATH.index(S.SHIPPED)])


def test_terminal_statuses_allow_nothing() -> None:
    assert {S.CLOSED, S.CANCELLED} == TERMINAL_STATUSES
    assert all(not TRANSITIONS[s] for s in TERMINAL_STATUSES)


def test_no_status_moves_to_itself_or_backwards() -> None:
    for current, target in itertools.product(FORWARD_PATH, FORWARD_PATH):
        if FORWARD_PATH.index(target) <= FORWARD_PATH.index(current):
            assert not is_allowed(current, target)


def test_the_table_has_exactly_the_legal_edges() -> None:
    edges = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert len(edges) == 6 + 5  # six forward steps, five cancellable statuses


def test_active_statuses_are_the_non_terminal_ones() -> None:
    assert set(ACTIVE_STATUSES) == set(S) - TERMINAL_STATUSES


@pytest.mark.parametrize(("current", "target", "phrase"), [
    (S.CLOSED, S.SHIPPED, "terminal"), (S.SHIPPED, S.CANCELLED, "before SHIPPED"),
    (S.SUBMITTED, S.SUBMITTED, "already"), (S.SUBMITTED, S.SHIPPED, "allowed from SUBMITTED")])
def test_illegal_transition_says_from_to_and_why(current: S, target: S, phrase: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)
    assert f"{current} -> {target}" in str(info.value)
    assert phrase in str(info.value)


def test_parse_status_is_case_insensitive_and_strict() -> None:
    assert parse_status(" shipped ") is S.SHIPPED
    for bad in ("DONE", 3, None, ""):
        with pytest.raises(ValueError, match=r"status|unknown"):
            parse_status(bad)
