"""Faithful stand-ins for the legacy MES and CRM (demo, tests, load tests).

They reproduce the legacy behaviour the platform has to cope with: one
orders table for active and archived orders, a slow list query, a slow
synchronous price calculation, and a CRM queue read without backpressure.
"""

from contracts.lifecycle import ACTIVE_STATUSES, TERMINAL_STATUSES, IllegalTransition, OrderStatus

__all__ = ["ACTIVE_STATUSES", "TERMINAL_STATUSES", "IllegalTransition", "OrderStatus"]
