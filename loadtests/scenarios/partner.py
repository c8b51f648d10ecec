"""B2B partners: list their orders, create orders, ask for quotes.

``platform``: the external listener with an API key — ``/partner/v1/orders`` and the async
``/partner/v1/quotes`` (202, then poll the job until it is priced).
``legacy``: what partners do today — the MES directly, ``partner_id`` in the request, and the
synchronous ``POST /price`` that holds the connection for the whole calculation.
Both report ``partner quote turnaround``: from asking to knowing the price.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any, ClassVar

import gevent
from locust import task

from loadtests.models import pick_model
from loadtests.scenarios.base import JSON, MesEdgeUser, think_time
from loadtests.settings import settings

MIX = settings().users["partner"]
TARGETS = settings().targets
MATERIALS = ("PLA", "PLA", "PETG", "ABS", "NYLON", "RESIN")
LIST_STATUSES = (None, None, None, "SUBMITTED", "PRICE_CALCULATED", "MANUFACTURING_STARTED", "SHIPPED")
_JOB_OPEN = ("queued", "running")


class PartnerUser(MesEdgeUser):
    """One person or integration of a partner company (partners share keys round-robin)."""

    weight = MIX.weight
    wait_time = think_time(MIX)
    host = TARGETS.external_url if TARGETS.mode == "platform" else TARGETS.mes_urls[0]
    _numbers: ClassVar[itertools.count[int]] = itertools.count()

    def on_start(self) -> None:
        n = next(PartnerUser._numbers) % settings().partners + 1
        self.partner_id = f"lt-partner-{n}"
        self.legacy = TARGETS.mode == "legacy"
        if self.legacy:
            self.base = self.rng.choice(TARGETS.mes_urls)
            self.headers: dict[str, str] = {}
        else:
            self.base = TARGETS.external_url
            self.headers = {"X-API-Key": TARGETS.partner_keys[self.partner_id]}

    def _orders_url(self) -> str:
        return f"{self.base}/orders" if self.legacy else f"{self.base}/partner/v1/orders"

    @task(MIX.tasks.get("list_orders", 0))
    def list_orders(self) -> None:
        """Look at the own orders, sometimes filtered by status (what integrations poll)."""
        params: dict[str, Any] = {"per_page": 20}
        if status := self.rng.choice(LIST_STATUSES):
            params["status"] = status
        if self.legacy:
            params["partner_id"] = self.partner_id
        self.call("GET", self._orders_url(), name="partner GET /orders", params=params, headers=self.headers)

    @task(MIX.tasks.get("create_order", 0))
    def create_order(self) -> None:
        """Place an order for a model (201 + the order)."""
        model = f"part-{self.rng.getrandbits(64):016x}.stl"  # unique: the chaos ledger counts copies
        order: JSON = {"customer": self.partner_id.upper(), "material": self.rng.choice(MATERIALS),
                       "quantity": self.rng.randint(1, 50), "model_name": model,
                       "model_sha256": hashlib.sha256(model.encode()).hexdigest()}
        if self.legacy:
            order["partner_id"] = self.partner_id
        self.call("POST", self._orders_url(), name="partner POST /orders", ok=(201, 200), json=order,
                  headers=self.headers)

    @task(MIX.tasks.get("quote", 0))
    def quote(self) -> None:
        """Ask the price of a model; the turnaround is recorded as ``partner quote turnaround``."""
        q = settings().quotes
        model = pick_model(self.rng, repeat_share=q.repeat_share, catalogue_size=q.catalogue_size)
        headers = {**self.headers, "Content-Type": "model/stl"}
        started = time.perf_counter()
        if self.legacy:
            body, _ = self.call("POST", f"{self.base}/price", name="partner POST /price", data=model,
                                params={"material": q.material}, headers=headers)
            if body is not None:
                self.record("partner quote turnaround", time.perf_counter() - started)
            return
        params = {"material": q.material}
        if TARGETS.callback_url:
            params["callback_url"] = TARGETS.callback_url
        job, location = self.call("POST", f"{self.base}/partner/v1/quotes", name="partner POST /quotes",
                               ok=(200, 202), data=model, params=params, headers=headers)
        location = location or str((job or {}).get("location", ""))
        while job is not None and job.get("status") in _JOB_OPEN:
            if time.perf_counter() - started > q.timeout:
                self.record("partner quote turnaround", time.perf_counter() - started,
                            f"not priced within {q.timeout:g} s")
                return
            gevent.sleep(q.poll_interval * settings().think_scale)
            url = location if location.startswith("http") else f"{self.base}{location}"
            job, _ = self.call("GET", url, name="partner GET /quotes/{id}",
                               headers=self.headers)
        if job is None:
            return  # the failing request is already in the statistics
        error = None if job.get("status") == "done" and job.get("price") else f"job {job.get('status')}"
        self.record("partner quote turnaround", time.perf_counter() - started, error)
