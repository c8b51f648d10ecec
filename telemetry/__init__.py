"""The one place every mes-edge process sets up logs, metrics and traces.

Start-up, in every process::

    setup_logging("gateway")
    setup_tracing("gateway")          # off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set
    registry = metrics_registry()     # multiprocess-aware; serve it with metrics_handler(registry)
"""

from telemetry.aiohttp_tracing import client_span, default_route_name, server_span_filter, set_response_status
from telemetry.context import order_id_var, request_id_var
from telemetry.logging import EcsJsonFormatter, setup_logging
from telemetry.metrics import (
    mark_process_dead,
    metrics_app,
    metrics_handler,
    metrics_registry,
    reset_multiprocess_dir,
    start_metrics_server,
)
from telemetry.propagation import consumer_span, extract, inject, producer_span
from telemetry.redaction import RedactingFilter, redact_text
from telemetry.tracing import active_tracer, setup_tracing

__all__ = [
    "EcsJsonFormatter",
    "RedactingFilter",
    "active_tracer",
    "client_span",
    "consumer_span",
    "default_route_name",
    "extract",
    "inject",
    "mark_process_dead",
    "metrics_app",
    "metrics_handler",
    "metrics_registry",
    "order_id_var",
    "producer_span",
    "redact_text",
    "request_id_var",
    "reset_multiprocess_dir",
    "server_span_filter",
    "set_response_status",
    "setup_logging",
    "setup_tracing",
    "start_metrics_server",
]
