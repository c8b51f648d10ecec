"""The order statuses of the legacy systems, as the sidecar needs them.

Defined here rather than imported from ``legacy_sim`` on purpose: the sidecar
fronts the *real* legacy MES, and must not depend on its simulator. The values
are the legacy database's (``orders.status`` CHECK constraint).
"""

from __future__ import annotations

import itertools

#: Every status an order can have, in lifecycle order (``CANCELLED`` last).
STATUSES: tuple[str, ...] = (
    "SUBMITTED", "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED",
    "MANUFACTURING_COMPLETED", "SHIPPED", "CLOSED", "CANCELLED",
)
#: Archived orders: they never change again.
TERMINAL_STATUSES: tuple[str, ...] = ("CLOSED", "CANCELLED")
#: Orders still being worked on: where orders get stuck.
ACTIVE_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s not in TERMINAL_STATUSES)

_FORWARD = STATUSES[:-1]  # SUBMITTED → … → CLOSED, one step at a time
_PREDECESSOR: dict[str, str] = {after: before for before, after in itertools.pairwise(_FORWARD)}


def predecessor(status: str) -> str | None:
    """The only status an order can have been in before ``status``; None if not unique.

    ``CANCELLED`` is reachable from every status before ``SHIPPED``, so it has none.
    """
    return _PREDECESSOR.get(status)
