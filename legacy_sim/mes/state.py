"""What the MES request handlers share, reachable through one typed app key."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from legacy_sim.mes.config import MesConfig
from legacy_sim.mes.pricing_service import PricingService


@dataclass(slots=True)
class MesState:
    """The running instance: its settings, database pool and pricing service."""

    config: MesConfig
    pool: asyncpg.Pool
    pricing: PricingService


MES_STATE = web.AppKey("mes_state", MesState)


def state_of(request: web.Request) -> MesState:
    """The :class:`MesState` of the app serving ``request``."""
    return request.app[MES_STATE]
