"""The route table: path prefix or path template + method → cluster and per-route policy.

Each listener has its own table; an external client can never match a route
declared for the internal listener because that route is not in its table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.auth.policy import RouteAuth
from gateway.cache.policy import CachePolicy
from gateway.errors import MethodNotAllowed, RouteNotFound
from gateway.ratelimit.policy import RouteRateLimit
from gateway.upstreams.config import RetryPolicy, TimeoutPolicy

ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Values of a route's ``partner_scope`` (``gateway/filters/partner_scope.py``).
PARTNER_SCOPES = frozenset({"orders"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """One row of the route table (see ``routes:`` in the gateway YAML)."""

    name: str
    listener: str
    prefix: str
    methods: frozenset[str]
    cluster: str
    rewrite_prefix: str | None
    timeouts: TimeoutPolicy
    retry: RetryPolicy
    max_body_bytes: int
    body_timeout: float
    auth: RouteAuth = field(default_factory=RouteAuth)             # API key + scopes (filters/auth.py)
    ratelimit: RouteRateLimit = field(default_factory=RouteRateLimit)  # per-partner windows
    #: Adaptive limiter queue priority (``resilience.shedding.PRIORITY_*``; higher first).
    priority: int = 0
    #: Answered by the gateway itself (``handler: quotes``) instead of a cluster; then ``cluster`` is "".
    handler: str | None = None
    #: Response cache policy for GET/HEAD (``gateway/filters/cache.py``); None = not cached.
    cache: CachePolicy | None = None
    #: ``orders``: the partner sees only its own orders (``gateway/filters/partner_scope.py``).
    partner_scope: str | None = None
    #: Usage accounting per partner (``gateway/filters/usage.py``) on a route with auth; only routes
    #: outside the partner API document (``/partner/v1``) may turn it off (``usage: false``).
    usage: bool = True
    #: For a ``path:`` route (then ``prefix`` holds the template text, e.g. ``/orders/{id}/price``):
    #: the template's segments, ``None`` where a ``{name}`` matches any one non-empty segment.
    segments: tuple[str | None, ...] | None = None

    def upstream_path(self, path_qs: str) -> str:
        """Path (with query) to send upstream, after the optional prefix rewrite."""
        if self.rewrite_prefix is None:
            return path_qs
        rest = path_qs[len(self.prefix):]
        if rest and rest[0] not in "/?":
            rest = "/" + rest
        return (self.rewrite_prefix.rstrip("/") + rest) or "/"

    def matches_path(self, path: str) -> bool:
        """Prefix match on whole path segments: ``/orders`` matches ``/orders/1``, not ``/ordersX``;
        a template matches segment by segment: ``/orders/{id}/price`` matches ``/orders/7/price``."""
        segments = self.segments
        if segments is not None:
            parts = path.split("/")
            return len(parts) == len(segments) and all(
                part if want is None else part == want for part, want in zip(parts, segments, strict=True))
        if not path.startswith(self.prefix):
            return False
        return len(path) == len(self.prefix) or self.prefix.endswith("/") or path[len(self.prefix)] == "/"


def parse_template(template: str) -> tuple[str | None, ...]:
    """Segments of a path template (``ValueError`` names what is wrong)."""
    if not template.startswith("/"):
        raise ValueError("must start with '/'")
    segments: list[str | None] = []
    for part in template.split("/"):
        if part.startswith("{") and part.endswith("}") and part[1:-1].isidentifier():
            segments.append(None)
        elif "{" in part or "}" in part:
            raise ValueError(f"segment {part!r}: a variable is a whole segment like {{id}}")
        else:
            segments.append(part)
    return tuple(segments)


#: Raw paths whose candidate routes a table remembers (client-controlled, so bounded).
CACHE_PATHS = 4096


class RouteTable:
    """Path templates first (the more specific match, in config order), then longest prefix first;
    a per-path cache of candidate routes."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(sorted(
            routes, key=lambda r: (r.segments is None, -len(r.prefix) if r.segments is None else 0)))
        self._cache: dict[str, tuple[Route, ...]] = {}

    @property
    def cached_paths(self) -> int:
        """How many raw paths the candidate cache holds (bounded at ``CACHE_PATHS``)."""
        return len(self._cache)

    def match(self, method: str, path: str) -> Route:
        """The route for ``method path``; RouteNotFound (404) or MethodNotAllowed (405, ``Allow``)."""
        candidates = self._cache.get(path)
        if candidates is None:
            candidates = tuple(r for r in self.routes if r.matches_path(path))
            if len(self._cache) < CACHE_PATHS:  # bounded: raw paths are client-controlled
                self._cache[path] = candidates
        for route in candidates:
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route  # HEAD follows GET (RFC 9110 §9.3.2), as in every HTTP server
        if candidates:
            allowed = set().union(*(r.methods for r in candidates))
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(f"{method} is not allowed on {path}", allow=", ".join(sorted(allowed)))
        raise RouteNotFound(f"no route for {path}")
