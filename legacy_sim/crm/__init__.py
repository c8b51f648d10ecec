"""The legacy CRM stand-in: order intake that queues orders for the MES on a Redis Stream."""

from legacy_sim.crm.app import build_crm_app
from legacy_sim.crm.state import CrmConfig

__all__ = ["CrmConfig", "build_crm_app"]
