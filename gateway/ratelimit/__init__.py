"""Per-partner rate limits and quotas shared by every gateway instance through Redis.

See ``docs/partner-edge.md``: sliding-window counters (``limits``' algorithm and key layout),
all windows of a request checked and counted atomically in one Lua round trip, a degraded
mode with local shares when Redis is away, and IETF ``RateLimit``/``RateLimit-Policy`` fields.
"""

from gateway.ratelimit.decision import Decision
from gateway.ratelimit.headers import policy_field, ratelimit_field, retry_after
from gateway.ratelimit.policy import RateLimitConfig, RouteRateLimit, Window
from gateway.ratelimit.service import PartnerLimiter

__all__ = ["Decision", "PartnerLimiter", "RateLimitConfig", "RouteRateLimit", "Window", "policy_field",
           "ratelimit_field", "retry_after"]
