"""``python -m sidecar``: parse options, set up logging and tracing, run on uvloop."""

from __future__ import annotations

from collections.abc import Sequence

import uvloop

from sidecar.config import parse_args
from sidecar.server import serve
from telemetry import setup_logging, setup_tracing


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code 0 after a clean stop (SIGTERM/SIGINT), 2 for bad options (argparse)."""
    config, log_level = parse_args(argv)
    service = f"sidecar-{config.kind}"
    setup_logging(service, level=log_level)
    provider = setup_tracing(service)  # off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set
    try:
        uvloop.run(serve(config, service_name=service))
    finally:
        if provider is not None:
            provider.shutdown()
    return 0
