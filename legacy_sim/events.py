"""Structured log events with ECS-style ``extra`` fields (the formatter lives in ``telemetry``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping


def log_event(logger: logging.Logger, message: str, *, action: str, outcome: str = "success",
              duration_ns: int | None = None, level: int = logging.INFO,
              fields: Mapping[str, object] | None = None) -> None:
    """Log ``message`` with ``event.action``/``event.outcome``/``event.duration`` and ``fields``.

    ``fields`` keys are ECS dotted names such as ``order.id`` or ``order.status.new``.
    """
    extra: dict[str, object] = {"event.action": action, "event.outcome": outcome}
    if duration_ns is not None:
        extra["event.duration"] = duration_ns
    if fields:
        extra.update(fields)
    logger.log(level, message, extra=extra)


def since_ns(started_ns: int) -> int:
    """Nanoseconds elapsed since ``started_ns`` (a ``time.perf_counter_ns()`` reading)."""
    return time.perf_counter_ns() - started_ns
