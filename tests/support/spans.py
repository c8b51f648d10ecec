"""Spans recorded in memory: a tracer provider (never installed globally) read back by tests."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry import setup_tracing


class Spans:
    """Pass ``.provider`` as ``tracer_provider=``; ``finished()`` returns what ended so far."""

    def __init__(self, service_name: str = "test-service") -> None:
        self.exporter = InMemorySpanExporter()
        provider = setup_tracing(service_name, exporter=self.exporter, sample_ratio=1.0, enabled=True,
                                 set_global=False)
        assert provider is not None
        self.provider: TracerProvider = provider

    def finished(self) -> list[ReadableSpan]:
        """Every span ended so far, oldest first."""
        self.provider.force_flush()
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def named(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``."""
        [span] = [s for s in self.finished() if s.name == name]
        return span
