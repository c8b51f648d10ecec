"""The Locust users of the real traffic mix (importing this package imports Locust)."""

from loadtests.scenarios.crm import CrmIntakeUser
from loadtests.scenarios.operator import OperatorUser
from loadtests.scenarios.partner import PartnerUser

__all__ = ["CrmIntakeUser", "OperatorUser", "PartnerUser"]
