"""CRM intake: sales staff enter new orders; the CRM queues them for the MES.

``platform``: the gateway's internal ``/crm/orders`` route (cluster ``crm``, via its sidecar);
``legacy``: the CRM directly. Either way the order then travels through the Redis stream
``crm:orders`` to the MES (in ``make run`` the MES sidecars relay it with backpressure).
"""

from __future__ import annotations

from locust import task

from loadtests.scenarios.base import MesEdgeUser, think_time
from loadtests.settings import settings

MIX = settings().users["crm"]
TARGETS = settings().targets
CUSTOMERS = ("ACME", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
MATERIALS = ("PLA", "PETG", "ABS", "NYLON", "RESIN", "TITANIUM")
RECENT = 20


class CrmIntakeUser(MesEdgeUser):
    """A sales clerk typing orders into the CRM and now and then checking one."""

    weight = MIX.weight
    wait_time = think_time(MIX)
    host = TARGETS.internal_url if TARGETS.mode == "platform" else TARGETS.crm_url

    def on_start(self) -> None:
        legacy = TARGETS.mode == "legacy"
        self.orders_url = f"{TARGETS.crm_url}/orders" if legacy else f"{TARGETS.internal_url}/crm/orders"
        self.submitted: list[str] = []
        # a clerk's first action: enter an order and look it up once. Every user then exercises
        # both endpoints, so a short smoke run cannot miss the rarer one (5:1 in the mix).
        self.submit_order()
        self.check_order()

    @task(MIX.tasks.get("submit_order", 0))
    def submit_order(self) -> None:
        """``POST /orders`` → 202 ``{crm_order_id, status: QUEUED}``."""
        order = {"customer": self.rng.choice(CUSTOMERS), "material": self.rng.choice(MATERIALS),
                 "quantity": self.rng.randint(1, 200),
                 "model_name": f"crm-{self.rng.getrandbits(64):016x}.stl"}  # unique: the chaos ledger
        body, _ = self.call("POST", self.orders_url, name="crm POST /orders", ok=(202,), json=order)
        if body is not None and body.get("crm_order_id"):
            self.submitted = [*self.submitted[-(RECENT - 1):], str(body["crm_order_id"])]

    @task(MIX.tasks.get("check_order", 0))
    def check_order(self) -> None:
        """``GET /orders/{crm_order_id}``: what the CRM recorded for a recent order."""
        if not self.submitted:
            self.submit_order()
            return
        crm_id = self.rng.choice(self.submitted)
        self.call("GET", f"{self.orders_url}/{crm_id}", name="crm GET /orders/{id}")
