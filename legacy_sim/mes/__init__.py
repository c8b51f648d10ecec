"""The legacy MES stand-in: aiohttp + asyncpg over one PostgreSQL ``orders`` table."""

from legacy_sim.mes.app import build_mes_app
from legacy_sim.mes.config import MesConfig

__all__ = ["MesConfig", "build_mes_app"]
