"""Usage accounting per partner per day (docs/partner-api.md#usage): counted in memory on the hot
path, flushed to Redis exactly once per batch, read by partners (``GET /partner/v1/usage``) and
exported by operators (admin ``/usage/export``, ``python -m gateway.usage export``)."""

from gateway.usage.config import UsageConfig, parse_usage_section
from gateway.usage.recorder import UsageRecorder

__all__ = ["UsageConfig", "UsageRecorder", "parse_usage_section"]
