"""JSON logs with Elastic Common Schema field names, for every mes-edge process.

`event.duration` is in nanoseconds (ECS). Each line carries the request id and
order id from :mod:`telemetry.context` when set, and ``trace.id``/``span.id`` of
the current OpenTelemetry span when there is a valid one (sampled or not: the ids
still correlate logs across services when the trace itself was not kept).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from telemetry.context import order_id_var, request_id_var
from telemetry.redaction import RedactingFilter
from telemetry.tracing import current_trace_ids


class EcsJsonFormatter(JsonFormatter):
    """One JSON object per line, ECS names: @timestamp, log.level, message, service.name …"""

    def __init__(self, service_name: str) -> None:
        super().__init__(
            "%(message)s",
            static_fields={"service.name": service_name, "ecs.version": "8.11.0"},
            timestamp="@timestamp",
            json_ensure_ascii=False,
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["log.level"] = record.levelname.lower()
        log_record["log.logger"] = record.name
        log_record["process.pid"] = record.process
        request_id = request_id_var.get()
        if request_id is not None and "http.request.id" not in log_record:
            log_record["http.request.id"] = request_id
        order_id = order_id_var.get()
        if order_id is not None and "order.id" not in log_record:
            log_record["order.id"] = order_id
        if "trace.id" not in log_record:
            trace_id, span_id = current_trace_ids()
            if trace_id is not None:
                log_record["trace.id"] = trace_id
                log_record["span.id"] = span_id
        if record.exc_info and "exc_info" in log_record:
            log_record["error.stack_trace"] = log_record.pop("exc_info")
            log_record["error.type"] = record.exc_info[0].__name__ if record.exc_info[0] else None


def setup_logging(service_name: str, *, level: str | None = None, log_file: str | Path | None = None,
                  stream: Any = None) -> None:
    """Configure the root logger once per process: JSON to stdout and, optionally, a rotating file.

    ``level`` defaults to ``$LOG_LEVEL`` or INFO; ``log_file`` to ``$LOG_FILE``.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = EcsJsonFormatter(service_name)
    redactor = RedactingFilter()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stdout)]
    log_file = log_file or os.environ.get("LOG_FILE")
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=50 * 1024 * 1024, backupCount=5, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
    logging.getLogger("aiohttp.access").propagate = False  # the gateway writes its own access log
