"""mes-edge sidecar: one process in front of one legacy instance (MES or CRM).

A reverse proxy that records RED metrics per route template, JSON access logs and
SERVER/CLIENT spans; for the MES also read-only business probes of its database and
order-change events on Redis. Entry point: ``python -m sidecar`` (``docs/sidecar.md``).
"""

from sidecar.app import build_app
from sidecar.config import SidecarConfig, parse_args
from sidecar.event_format import OrderEvent, parse_event
from sidecar.server import serve

__all__ = ["OrderEvent", "SidecarConfig", "build_app", "parse_args", "parse_event", "serve"]
