"""The locustfile of the chaos harness: the normal traffic mix plus the request journal."""

from __future__ import annotations

from loadtests.chaos import journal  # noqa: F401  (registers the journal listener)
from loadtests.locustfile import CrmIntakeUser, OperatorUser, PartnerUser, Shape

__all__ = ["CrmIntakeUser", "OperatorUser", "PartnerUser", "Shape"]
