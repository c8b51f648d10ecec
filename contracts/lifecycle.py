"""The order lifecycle shared by the legacy MES and CRM: statuses and legal transitions."""

from __future__ import annotations

import itertools
from enum import StrEnum


class OrderStatus(StrEnum):
    """Status of an order, in lifecycle order (``CANCELLED`` last)."""

    SUBMITTED = "SUBMITTED"
    PRICE_CALCULATED = "PRICE_CALCULATED"
    MANUFACTURING_APPROVED = "MANUFACTURING_APPROVED"
    MANUFACTURING_STARTED = "MANUFACTURING_STARTED"
    MANUFACTURING_COMPLETED = "MANUFACTURING_COMPLETED"
    SHIPPED = "SHIPPED"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"


#: The happy path, one step at a time.
FORWARD_PATH: tuple[OrderStatus, ...] = (
    OrderStatus.SUBMITTED,
    OrderStatus.PRICE_CALCULATED,
    OrderStatus.MANUFACTURING_APPROVED,
    OrderStatus.MANUFACTURING_STARTED,
    OrderStatus.MANUFACTURING_COMPLETED,
    OrderStatus.SHIPPED,
    OrderStatus.CLOSED,
)

#: Terminal statuses: the legacy calls such orders "archived".
TERMINAL_STATUSES: frozenset[OrderStatus] = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED})

#: Every status an order can be in while it is still being worked on.
ACTIVE_STATUSES: tuple[OrderStatus, ...] = tuple(s for s in FORWARD_PATH if s not in TERMINAL_STATUSES)

#: Statuses from which an order may still be cancelled (anything before SHIPPED).
CANCELLABLE: frozenset[OrderStatus] = frozenset(FORWARD_PATH[: FORWARD_PATH.index(OrderStatus.SHIPPED)])


def _build_transitions() -> dict[OrderStatus, frozenset[OrderStatus]]:
    table: dict[OrderStatus, set[OrderStatus]] = {status: set() for status in OrderStatus}
    for current, following in itertools.pairwise(FORWARD_PATH):
        table[current].add(following)
    for status in CANCELLABLE:
        table[status].add(OrderStatus.CANCELLED)
    return {status: frozenset(targets) for status, targets in table.items()}


#: status -> statuses it may move to. Terminal statuses map to an empty set.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = _build_transitions()


class IllegalTransition(Exception):
    """A status change the lifecycle does not allow (the HTTP layer answers 409)."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        self.current = current
        self.target = target
        super().__init__(describe_illegal(current, target))


def is_allowed(current: OrderStatus, target: OrderStatus) -> bool:
    """True when an order in ``current`` may move to ``target``."""
    return target in TRANSITIONS[current]


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is allowed."""
    if not is_allowed(current, target):
        raise IllegalTransition(current, target)


def describe_illegal(current: OrderStatus, target: OrderStatus) -> str:
    """A human sentence saying why ``current → target`` is refused."""
    if current in TERMINAL_STATUSES:
        reason = f"{current} is terminal (archived)"
    elif current == target:
        reason = "the order is already in that status"
    elif target is OrderStatus.CANCELLED:
        reason = "an order can be cancelled only before SHIPPED"
    else:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing"
        reason = f"allowed from {current}: {allowed}"
    return f"illegal transition {current} -> {target}: {reason}"


def parse_status(value: object) -> OrderStatus:
    """Turn a client-supplied value into an :class:`OrderStatus` (ValueError if unknown)."""
    if not isinstance(value, str):
        raise ValueError("status must be a string")
    try:
        return OrderStatus(value.strip().upper())
    except ValueError:
        names = ", ".join(s.value for s in OrderStatus)
        raise ValueError(f"unknown status {value!r}; one of {names}") from None


#: The statuses as plain strings in lifecycle order — what SQL parameters, metric labels and JSON
#: carry (the sidecar and the gateway need only these).
STATUS_NAMES: tuple[str, ...] = tuple(s.value for s in OrderStatus)
ACTIVE_STATUS_NAMES: tuple[str, ...] = tuple(s.value for s in ACTIVE_STATUSES)
TERMINAL_STATUS_NAMES: tuple[str, ...] = tuple(s.value for s in OrderStatus if s in TERMINAL_STATUSES)
FORWARD_PATH_NAMES: tuple[str, ...] = tuple(s.value for s in FORWARD_PATH)
_PREDECESSOR: dict[str, str] = {after: before for before, after in itertools.pairwise(FORWARD_PATH_NAMES)}


def predecessor(status: str) -> str | None:
    """The only status an order can have been in before ``status``; None if not unique.

    ``CANCELLED`` is reachable from every status before ``SHIPPED``, so it has none.
    """
    return _PREDECESSOR.get(status)
