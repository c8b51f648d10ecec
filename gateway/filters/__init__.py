"""The gateway's filter chain: one concern per module, one factory each.

The order is explicit in :func:`gateway.app.build_listener_app`.
"""

from gateway.filters.errors import error_filter
from gateway.filters.observability import observability_filter
from gateway.filters.request_id import request_id_filter
from gateway.filters.routing import RouteFilter, route_dispatcher

__all__ = ["RouteFilter", "error_filter", "observability_filter", "request_id_filter", "route_dispatcher"]
