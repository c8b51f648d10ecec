"""Shop-floor operators: refresh a status-filtered order list, open an order, move it on.

Status changes follow ``contracts.lifecycle``: the next step of the forward path, or
``CANCELLED`` (``cancel_share``) while the order may still be cancelled; terminal orders are
left alone. The status is read from the order itself just before the change, so a 409 only
happens when a colleague moved the same order in between — counted as a success (the MES
refused correctly) and visible as 409 in the status tally.
"""

from __future__ import annotations

from typing import Any

from locust import task

from contracts.lifecycle import CANCELLABLE, FORWARD_PATH, TERMINAL_STATUSES, OrderStatus
from loadtests.scenarios.base import JSON, MesEdgeUser, think_time
from loadtests.settings import settings

MIX = settings().users["operator"]
TARGETS = settings().targets
PER_PAGE = 50


def next_status(current: OrderStatus, *, cancel: bool) -> OrderStatus | None:
    """The legal change an operator makes from ``current`` (None: nothing, it is archived)."""
    if current in TERMINAL_STATUSES:
        return None
    if cancel and current in CANCELLABLE:
        return OrderStatus.CANCELLED
    return FORWARD_PATH[FORWARD_PATH.index(current) + 1]


class OperatorUser(MesEdgeUser):
    """An operator at a terminal: the order list is their screen, refreshed all shift long."""

    weight = MIX.weight
    wait_time = think_time(MIX)
    host = TARGETS.internal_url if TARGETS.mode == "platform" else TARGETS.mes_urls[0]

    def on_start(self) -> None:
        base = TARGETS.internal_url if TARGETS.mode == "platform" else self.rng.choice(TARGETS.mes_urls)
        self.orders_url = f"{base}/orders"
        self.on_screen: list[int] = []
        statuses = settings().operator_statuses
        self.statuses, self.status_weights = list(statuses), list(statuses.values())

    @task(MIX.tasks.get("refresh_list", 0))
    def refresh_list(self) -> None:
        """``GET /orders?status=…&per_page=50``, newest first — the legacy's expensive query."""
        status = self.rng.choices(self.statuses, weights=self.status_weights)[0]
        params: dict[str, Any] = {"status": status, "per_page": PER_PAGE}
        page, _ = self.call("GET", self.orders_url, name="operator GET /orders?status", params=params)
        if page is not None:
            self.on_screen = [int(o["id"]) for o in page.get("items", [])]

    @task(MIX.tasks.get("advance_order", 0))
    def advance_order(self) -> None:
        """Open one order from the list on screen and move it one legal step."""
        if not self.on_screen:
            self.refresh_list()
            if not self.on_screen:
                return
        order_id = self.on_screen.pop(self.rng.randrange(len(self.on_screen)))
        order, _ = self.call("GET", f"{self.orders_url}/{order_id}", name="operator GET /orders/{id}")
        if order is None:
            return
        target = next_status(OrderStatus(order["status"]), cancel=self.rng.random() < settings().cancel_share)
        if target is None:
            return
        change: JSON = {"status": target.value}
        if target is OrderStatus.PRICE_CALCULATED:
            change["price_eur"] = round(self.rng.uniform(5, 500), 2)
        self.call("POST", f"{self.orders_url}/{order_id}/status", name="operator POST /orders/{id}/status",
                  json=change, tolerated=(409,))
