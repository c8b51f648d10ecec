"""The legacy CRM stand-in: order intake that queues orders for the MES on a Redis Stream."""

from legacy_sim.crm.app import CrmConfig, build_crm_app

__all__ = ["CrmConfig", "build_crm_app"]
