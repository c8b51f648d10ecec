"""Response cache: policies, keys and versions, stores (memory, Redis), collapsing, invalidation.

The filter is :func:`gateway.filters.cache.cache_filter`; see ``docs/caching.md``.
"""

from gateway.cache.backends import CacheBackend, CacheBackendError, MemoryBackend
from gateway.cache.policy import CacheConfig, CachePolicy, parse_cache_section, parse_route_cache
from gateway.cache.service import ResponseCache

__all__ = ["CacheBackend", "CacheBackendError", "CacheConfig", "CachePolicy", "MemoryBackend",
           "ResponseCache", "parse_cache_section", "parse_route_cache"]
