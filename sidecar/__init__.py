"""mes-edge sidecar: one process in front of one legacy instance (MES or CRM).

A reverse proxy that records RED metrics per route template, JSON access logs and
SERVER/CLIENT spans; for the MES also read-only business probes of its database and
order-change events on Redis (format: ``contracts.order_events``). Entry point:
``python -m sidecar`` (``docs/sidecar.md``).
"""

from sidecar.app import build_app
from sidecar.config import SidecarConfig, parse_args
from sidecar.server import serve

__all__ = ["SidecarConfig", "build_app", "parse_args", "serve"]
