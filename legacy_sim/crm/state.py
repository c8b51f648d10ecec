"""What the CRM request handlers share, reachable through typed app keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from opentelemetry.trace import TracerProvider

from contracts.crm_envelope import STREAM
from contracts.crm_status import STATUS_STREAM
from sharedstate.redis_spec import AnyRedis


@dataclass(frozen=True, kw_only=True, slots=True)
class CrmConfig:
    """Settings of the CRM stand-in."""

    redis_url: str
    stream: str = STREAM
    status_stream: str = STATUS_STREAM  # delivery statuses from the MES side ("" = not read)
    max_json_bytes: int = 64 * 1024
    health_timeout_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Tracing:
    """The tracer provider the handlers' spans use (``None`` = the global one)."""

    provider: TracerProvider | None = None


CRM_CONFIG = web.AppKey("crm_config", CrmConfig)
REDIS: web.AppKey[AnyRedis] = web.AppKey("crm_redis")
TRACING = web.AppKey("crm_tracing", Tracing)
