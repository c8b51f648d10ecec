"""Fixtures for telemetry unit tests: a clean environment and an in-memory tracer provider."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from telemetry.logging import EcsJsonFormatter
from telemetry.redaction import RedactingFilter
from tests.support.spans import Spans

_ENV_PREFIXES = ("OTEL_", "PROMETHEUS_MULTIPROC_DIR", "SERVICE_", "DEPLOYMENT_ENVIRONMENT", "LOG_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_*/telemetry variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorder = Spans()
    try:
        yield recorder
    finally:
        recorder.provider.shutdown()


@pytest.fixture
def log_lines() -> Iterator[tuple[logging.Logger, Callable[[], list[dict[str, Any]]]]]:
    """A logger wired like setup_logging() wires the root one, and a reader of its JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EcsJsonFormatter("test-service"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.telemetry")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    try:
        yield logger, read
    finally:
        logger.removeHandler(handler)
