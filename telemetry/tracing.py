"""OpenTelemetry tracing set-up: one call per process, OTLP/HTTP to Jaeger, or nothing at all.

Tracing is *off* unless an endpoint or an exporter is given: no provider is
installed, the global one stays the API's no-op proxy, and every helper in
``telemetry`` checks :func:`active_tracer` and skips span work entirely. Tests
therefore trace only when they pass an ``InMemorySpanExporter``.

Spans leave the process on the SDK's ``BatchSpanProcessor`` worker thread: ending
a span only appends to a bounded deque (the oldest span is dropped when it is
full), so a slow or dead collector can never block or fail a request.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from importlib import metadata
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from configkit import ConfigError, number

__all__ = ["SCOPE_NAME", "active_tracer", "current_trace_ids", "setup_tracing", "traces_endpoint_from_env"]

_log = logging.getLogger(__name__)

#: Instrumentation scope of every span the ``telemetry`` helpers start.
SCOPE_NAME = "mes_edge.telemetry"
#: Seconds one OTLP export may take (retries included) unless OTEL_EXPORTER_OTLP_*TIMEOUT is set.
DEFAULT_EXPORT_TIMEOUT_S = 3.0
#: Milliseconds ``provider.shutdown()`` waits for the last export before giving up.
SHUTDOWN_TIMEOUT_MS = 2000
_TRACES_PATH = "/v1/traces"
_TIMEOUT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")

# One Tracer per provider: the SDK builds a new Tracer object on every get_tracer().
_tracers: weakref.WeakKeyDictionary[trace.TracerProvider, trace.Tracer] = weakref.WeakKeyDictionary()


class _BoundedShutdownSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor whose shutdown waits at most SHUTDOWN_TIMEOUT_MS.

    The SDK's own shutdown joins the export thread for up to 30 s, which a dead
    collector turns into a 30 s process exit.
    """

    def shutdown(self) -> None:
        batch = getattr(self, "_batch_processor", None)
        if batch is None:  # pragma: no cover - SDK internals changed; fall back to its default
            super().shutdown()  # type: ignore[no-untyped-call]
            return
        batch.shutdown(timeout_millis=SHUTDOWN_TIMEOUT_MS)


def traces_endpoint_from_env() -> str | None:
    """The OTLP/HTTP traces URL from ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``…_ENDPOINT`` + /v1/traces."""
    signal = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if signal:
        return signal
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return _with_traces_path(base) if base else None


def _with_traces_path(url: str) -> str:
    """``http://jaeger:4318`` → ``http://jaeger:4318/v1/traces``; a URL with a path is kept as is."""
    if urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + _TRACES_PATH
    return url


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _sample_ratio_from_env() -> float:
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not raw:
        return 1.0
    try:
        ratio = float(raw)
    except ValueError:
        raise ConfigError("OTEL_TRACES_SAMPLER_ARG", f"expected a number in [0, 1], got {raw!r}") from None
    return number(ratio, "OTEL_TRACES_SAMPLER_ARG", minimum=0, maximum=1)


def _service_version() -> str:
    version = os.environ.get("SERVICE_VERSION")
    if version:
        return version
    try:
        return metadata.version("mes-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def _resource(service_name: str) -> Resource:
    """service.* and deployment.* attributes; OTEL_RESOURCE_ATTRIBUTES adds more but cannot override these."""
    environment = os.environ.get("DEPLOYMENT_ENVIRONMENT", "development")
    return Resource.create({
        "service.name": service_name,
        "service.namespace": "mes-edge",
        "service.instance.id": os.environ.get("SERVICE_INSTANCE_ID")
        or f"{socket.gethostname()}-{os.getpid()}",
        "service.version": _service_version(),
        # semconv renamed the attribute; Jaeger UIs and queries still look for the old one
        "deployment.environment": environment,
        "deployment.environment.name": environment,
    })


def _otlp_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    timeout = None if any(os.environ.get(v) for v in _TIMEOUT_VARS) else DEFAULT_EXPORT_TIMEOUT_S
    return OTLPSpanExporter(endpoint=_with_traces_path(endpoint), timeout=timeout)


def setup_tracing(service_name: str, *, endpoint: str | None = None, sample_ratio: float | None = None,
                  exporter: SpanExporter | None = None, enabled: bool | None = None,
                  set_global: bool = True) -> TracerProvider | None:
    """Install the process's tracer provider, or none when tracing is off; call once at start-up.

    * ``enabled`` defaults to ``not $OTEL_SDK_DISABLED``; ``False`` always means off.
    * ``exporter`` (tests: ``InMemorySpanExporter``) wins over ``endpoint``, which defaults to
      ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``$OTEL_EXPORTER_OTLP_ENDPOINT``/v1/traces. A base URL
      without a path (``http://jaeger:4318``) gets ``/v1/traces`` appended. Neither → tracing off.
    * sampling is ``ParentBased(TraceIdRatioBased(ratio))``; ``sample_ratio`` defaults to
      ``$OTEL_TRACES_SAMPLER_ARG`` or 1.0.
    * the batch queue honours ``OTEL_BSP_*`` (default 2048 spans, batches of 512 every 5 s).

    ``set_global=False`` returns a provider without installing it (for tests or side-by-side apps);
    pass it to the helpers' ``tracer_provider=`` argument. Raises ``ValueError`` on a bad ratio.
    """
    if enabled is None:
        enabled = not _env_flag("OTEL_SDK_DISABLED")
    if not enabled:
        return None
    ratio = _sample_ratio_from_env() if sample_ratio is None else sample_ratio
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sample ratio must be in [0, 1], got {ratio}")
    if exporter is None:
        endpoint = endpoint or traces_endpoint_from_env()
        if not endpoint:
            _log.info("tracing off for %s: no OTLP endpoint configured", service_name)
            return None
        exporter = _otlp_exporter(endpoint)
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)), resource=_resource(service_name))
    provider.add_span_processor(_BoundedShutdownSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def active_tracer(tracer_provider: trace.TracerProvider | None = None) -> trace.Tracer | None:
    """The ``telemetry`` tracer of ``tracer_provider`` (default: the global one), or None if tracing is off.

    "Off" means the global provider is still the API's proxy/no-op one, i.e. nobody called
    :func:`setup_tracing` with somewhere to send spans. Cheap enough to call per request.
    """
    provider = tracer_provider or trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    tracer = _tracers.get(provider)
    if tracer is None:
        tracer = provider.get_tracer(SCOPE_NAME, _service_version())
        _tracers[provider] = tracer
    return tracer


def current_trace_ids() -> tuple[str | None, str | None]:
    """``(trace.id, span.id)`` of the current span as ECS hex strings, or ``(None, None)``."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
