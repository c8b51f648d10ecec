"""setup_tracing: off by default, configured from the standard OTEL_* variables otherwise."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from configkit import ConfigError
from telemetry.tracing import _with_traces_path, active_tracer, setup_tracing, traces_endpoint_from_env


@pytest.fixture
def providers():
    """Shuts down every provider a test created (each owns an export thread)."""
    created = []
    yield created
    for provider in created:
        provider.shutdown()


def test_tracing_is_off_without_endpoint_or_exporter():
    assert setup_tracing("gateway", set_global=False) is None
    assert active_tracer() is None  # the global provider is still the API's no-op proxy


@pytest.mark.parametrize("disabled", ["true", "TRUE"])
def test_otel_sdk_disabled_wins_over_an_exporter(monkeypatch, disabled):
    monkeypatch.setenv("OTEL_SDK_DISABLED", disabled)
    assert setup_tracing("gateway", exporter=InMemorySpanExporter(), set_global=False) is None


def test_enabled_false_wins_over_an_endpoint():
    assert setup_tracing("gateway", endpoint="http://127.0.0.1:4318", enabled=False, set_global=False) is None


def test_sampler_is_parent_based_trace_id_ratio_from_env(monkeypatch, providers):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = setup_tracing("gateway", exporter=InMemorySpanExporter(), set_global=False)
    providers.append(provider)
    description = provider.sampler.get_description()
    assert description.startswith("ParentBased{root:TraceIdRatioBased{0.25}")


def test_explicit_sample_ratio_wins_over_env(monkeypatch, providers):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = setup_tracing("gateway", exporter=InMemorySpanExporter(), sample_ratio=0.0, set_global=False)
    providers.append(provider)
    assert "TraceIdRatioBased{0.0}" in provider.sampler.get_description()


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_ratio_outside_zero_one_fails_fast(ratio):
    with pytest.raises(ValueError, match="sample ratio"):
        setup_tracing("gateway", exporter=InMemorySpanExporter(), sample_ratio=ratio, set_global=False)


def test_non_numeric_sampler_arg_names_the_variable(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "ten percent")
    expected = r"^OTEL_TRACES_SAMPLER_ARG: expected a number in \[0, 1\], got 'ten percent'$"
    with pytest.raises(ConfigError, match=expected):
        setup_tracing("gateway", exporter=InMemorySpanExporter(), set_global=False)


def test_resource_names_service_instance_version_and_environment(monkeypatch, providers):
    monkeypatch.setenv("SERVICE_VERSION", "1.2.3")
    monkeypatch.setenv("SERVICE_INSTANCE_ID", "gw-a-1")
    monkeypatch.setenv("DEPLOYMENT_ENVIRONMENT", "staging")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "host.name=edge-1,service.name=ignored")
    provider = setup_tracing("gateway", exporter=InMemorySpanExporter(), set_global=False)
    providers.append(provider)
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "gateway"
    assert attributes["service.instance.id"] == "gw-a-1"
    assert attributes["service.version"] == "1.2.3"
    assert attributes["deployment.environment"] == "staging"
    assert attributes["host.name"] == "edge-1"


def test_default_instance_id_is_unique_per_process(providers):
    provider = setup_tracing("worker", exporter=InMemorySpanExporter(), set_global=False)
    providers.append(provider)
    import os
    assert str(provider.resource.attributes["service.instance.id"]).endswith(f"-{os.getpid()}")


def test_signal_endpoint_is_used_as_is_and_base_endpoint_gets_the_traces_path(monkeypatch):
    assert traces_endpoint_from_env() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318")
    assert traces_endpoint_from_env() == "http://jaeger:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom/traces")
    assert traces_endpoint_from_env() == "http://collector:4318/custom/traces"


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("http://jaeger:4318", "http://jaeger:4318/v1/traces"),
    ("http://jaeger:4318/", "http://jaeger:4318/v1/traces"),
    ("http://jaeger:4318/v1/traces", "http://jaeger:4318/v1/traces"),
])
def test_endpoint_argument_accepts_base_or_signal_url(endpoint, expected):
    assert _with_traces_path(endpoint) == expected


def test_endpoint_from_env_turns_tracing_on(monkeypatch, providers):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = setup_tracing("gateway", set_global=False)
    assert provider is not None
    providers.append(provider)
    assert active_tracer(provider) is active_tracer(provider)  # cached per provider


def test_active_tracer_is_none_for_the_api_no_op_provider():
    assert active_tracer(trace.NoOpTracerProvider()) is None
